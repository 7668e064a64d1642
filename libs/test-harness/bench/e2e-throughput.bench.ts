// End-to-end throughput and latency of the five-service deployment (Postgres + NATS), as users
// feel them (issue #16, P1 and P3):
// * P1: recipient deliveries per second from real clients' SendMessage (REST → edge gateway → DS
//   → outbox → JetStream → QS consumer) to rows committed in the recipients' queues, next to the
//   raw pipeline in the same run: the same JetStream publish/consume and the same rows inserted
//   in Postgres, with no protocol work.
// * P3: send → a listening recipient's client has processed the message, p50/p99 at half the P1
//   maximum message rate.
// Run: npm run bench -- e2e (needs the Postgres and NATS of DATABASE_URL / NATS_URL, default the
// local ones). Not a test: it asserts nothing, it prints tables. BENCH_GROUPS, BENCH_MESSAGES and
// BENCH_LATENCY_MESSAGES change the sizes; PHOENIX_BENCH_QUICK=1 runs a tiny version. P1 runs with
// one replica of each service (what startDeployment starts), then again with a second QS replica.
// PHOENIX_CHILD_NODE_ARGS="--cpu-prof --cpu-prof-dir=<dir>" has every service process write a V8
// CPU profile there when the deployment stops (open it in Chrome DevTools or summarise it with
// scripts/cpu-profile-top.mjs; the log gives P1's time window for its `--window`).
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import type { PhoenixClient } from "@phoenix/client";
import { type BusMessage, connectNatsBus } from "@phoenix/runtime/bus";
import pg from "pg";
import { connectUsers, syncUntil, TestClients } from "../src/clients.js";
import { type Deployment, startDeployment } from "../src/deployment.js";
import { freePorts, ServiceProcess } from "../src/service-process.js";
import { deleteStreams } from "../src/storage.js";
import { pool } from "./pool.js";

process.env.DATABASE_URL ??= "postgres://postgres@127.0.0.1:5432/postgres";
process.env.NATS_URL ??= "nats://127.0.0.1:4222";
const NATS_URL = process.env.NATS_URL;

const QUICK = process.env.PHOENIX_BENCH_QUICK === "1";
const GROUPS = QUICK ? 1 : Number(process.env.BENCH_GROUPS ?? 4);
const MEMBERS = QUICK ? 3 : 10;
/** Messages each member sends in the throughput run (every member of every group sends). */
const MESSAGES = QUICK ? 2 : Number(process.env.BENCH_MESSAGES ?? 10);
const LATENCY_MESSAGES = QUICK ? 4 : Number(process.env.BENCH_LATENCY_MESSAGES ?? 300);
/** P3's send rate as a fraction of P1's maximum message rate (the target: half). */
const LATENCY_RATE_FRACTION = Number(process.env.BENCH_P3_RATE_FRACTION ?? 0.5);
const TEXT_BYTES = 1024;
const TIMEOUT_MS = 600_000;

function loadavg(): string {
  return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
}

const OWN_CPU = "bench process (clients)";

/**
 * Starts a second QS on the deployment's database, NATS and keys (another gRPC port); it shares
 * the fan-out consumer with the first. The harness keeps each process's environment to itself, so
 * it is read from /proc (Linux).
 */
async function startQueueReplica(d: Deployment): Promise<ServiceProcess> {
  const queue = d.processes.find((p) => p.name === "queue");
  if (queue?.pid === undefined) throw new Error("the deployment has no queue process");
  const env = Object.fromEntries(
    readFileSync(`/proc/${queue.pid}/environ`, "utf8")
      .split("\0")
      .filter((kv) => kv.includes("="))
      .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
  );
  const [port] = (await freePorts(1)) as [number];
  const replica = ServiceProcess.spawn({
    name: "queue-2",
    entry: "services/queue/src/main.ts",
    env: { ...env, GRPC_PORT: String(port) },
  });
  await replica.waitForPort(port, { what: "its listener", timeoutMs: 180_000 });
  return replica;
}

/** CPU seconds (user + system) used so far by each deployment process and by this one (the clients). */
function cpuSeconds(d: Deployment, extra: readonly ServiceProcess[] = []): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of [...d.processes, ...extra]) {
    if (p.pid === undefined) continue;
    try {
      // Fields after the command name: utime and stime are the 12th and 13th, in clock ticks.
      const fields = readFileSync(`/proc/${p.pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
      out.set(p.name, (Number(fields[11]) + Number(fields[12])) / 100);
    } catch {
      // No /proc (not Linux): the breakdown is left out.
    }
  }
  const own = process.cpuUsage();
  out.set(OWN_CPU, (own.user + own.system) / 1e6);
  return out;
}

/** What each process spent between two {@link cpuSeconds} readings, as one line. */
function cpuLine(before: Map<string, number>, after: Map<string, number>): string {
  return [...after].map(([name, s]) => `${name} ${(s - (before.get(name) ?? 0)).toFixed(1)} s`).join(", ");
}

function log(line: string): void {
  console.error(`[${(performance.now() / 1000).toFixed(1)} s, load ${loadavg()}] ${line}`);
}

/** A 1 KiB text whose first characters say which message it is and when it was sent. */
function body(tag: string): string {
  const head = `${tag} ${(performance.timeOrigin + performance.now()).toFixed(3)} `;
  return head.padEnd(TEXT_BYTES, "x");
}

interface Group {
  id: string;
  members: PhoenixClient[];
}

/** `count` groups of `size` members each: the creator connects to everyone, creates, invites. */
async function makeGroups(
  clients: TestClients,
  d: Deployment,
  count: number,
  size: number,
): Promise<Group[]> {
  const groups: Group[] = [];
  for (let g = 0; g < count; g++) {
    const members = await Promise.all(
      Array.from({ length: size }, (_, i) => clients.register(d.url, d.domain, `g${g}m${i}`)),
    );
    const [creator, ...others] = members as [PhoenixClient, ...PhoenixClient[]];
    for (const other of others) await connectUsers(creator, other);
    const id = await creator.createConversation(`bench ${g}`);
    await creator.invite(
      id,
      others.map((o) => o.userId),
    );
    await Promise.all(
      others.map((o) =>
        syncUntil(o, () => o.conversations().some((c) => c.id === id), `group ${g}`, 120_000),
      ),
    );
    groups.push({ id, members });
    log(`group ${g + 1}/${count} of ${size} ready`);
  }
  return groups;
}

async function countRows(db: pg.Client, table: string): Promise<number> {
  const result = await db.query<{ n: number }>(`select count(*)::int as n from ${table}`);
  return result.rows[0]?.n ?? 0;
}

async function waitForRows(db: pg.Client, table: string, expected: number): Promise<void> {
  const deadline = Date.now() + TIMEOUT_MS;
  while ((await countRows(db, table)) < expected) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${expected} rows in ${table}`);
    await sleep(10);
  }
}

/** P1, protocol side: every member sends MESSAGES texts, all members of all groups at once. */
async function throughputE2e(
  db: pg.Client,
  groups: Group[],
): Promise<{ deliveries: number; ms: number; sendMs: number[]; loopDelayMs: number[] }> {
  const before = await countRows(db, "qs_messages");
  const messages = groups.length * MEMBERS * MESSAGES;
  const deliveries = messages * (MEMBERS - 1);
  const sendMs: number[] = [];
  // How long this process's event loop (every client's crypto and SQLite store) was blocked.
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const t0 = performance.now();
  await Promise.all(
    groups.flatMap((g) =>
      g.members.map(async (m, i) => {
        for (let k = 0; k < MESSAGES; k++) {
          const s0 = performance.now();
          await m.sendMessage(g.id, body(`p1-${i}-${k}`));
          sendMs.push(performance.now() - s0);
        }
      }),
    ),
  );
  await waitForRows(db, "qs_messages", before + deliveries);
  const ms = performance.now() - t0;
  loop.disable();
  const loopDelayMs = [50, 99].map((p) => loop.percentile(p) / 1e6).concat(loop.max / 1e6);
  return { deliveries, ms, sendMs: sendMs.sort((a, b) => a - b), loopDelayMs };
}

/**
 * P1, raw side: the same number of ~1 KiB messages published to a JetStream stream by as many
 * concurrent publishers as there were senders, consumed, and MEMBERS-1 rows per message inserted
 * in one transaction per batch of fetched messages, then acked: no crypto, no lookups.
 */
async function throughputRaw(db: pg.Client, databaseUrl: string, senders: number, messages: number) {
  const suffix = randomBytes(5).toString("hex");
  const stream = `E2EB_RAW_${suffix}`;
  const subject = `e2eb${suffix}.raw`;
  const bus = await connectNatsBus({ servers: NATS_URL, name: "e2e-bench-raw" });
  const writer = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  await db.query(
    "create table bench_raw (queue bytea not null, seq int8 not null, payload bytea not null, at timestamptz not null default now())",
  );
  try {
    await bus.ensureStream({ name: stream, subjects: [subject] });
    const recipients = MEMBERS - 1;
    let pending: BusMessage[] = [];
    let waiters: (() => void)[] = [];
    let flushing = false;
    const flush = async (): Promise<void> => {
      while (pending.length > 0) {
        const batch = pending;
        const done = waiters;
        pending = [];
        waiters = [];
        const params: Uint8Array[] = [];
        const values: string[] = [];
        for (const m of batch)
          for (let r = 0; r < recipients; r++) {
            params.push(m.data.subarray(0, 16), m.data);
            values.push(`($${params.length - 1}, ${r}, $${params.length})`);
          }
        const client = await writer.connect();
        try {
          await client.query("begin");
          for (let i = 0; i < values.length; i += 1000) {
            const slice = values.slice(i, i + 1000);
            const first = i * 2;
            await client.query(
              `insert into bench_raw (queue, seq, payload) values ${slice.join(", ")}`.replace(
                /\$(\d+)/g,
                (_, n: string) => `$${Number(n) - first}`,
              ),
              params.slice(first, first + slice.length * 2),
            );
          }
          await client.query("commit");
        } finally {
          client.release();
        }
        for (const w of done) w();
      }
      flushing = false;
    };
    const subscription = await bus.consume(
      { stream, durable: `raw-${suffix}`, maxInFlight: 256 },
      (m) =>
        new Promise<void>((resolve) => {
          pending.push(m);
          waiters.push(resolve);
          if (!flushing) {
            flushing = true;
            void Promise.resolve().then(flush);
          }
        }),
    );
    const payload = new Uint8Array(randomBytes(TEXT_BYTES + 256));
    const t0 = performance.now();
    await pool(senders, messages, (i) =>
      bus.publish(subject, payload, { id: `raw-${suffix}-${i}` }).then(() => undefined),
    );
    await waitForRows(db, "bench_raw", messages * recipients);
    const ms = performance.now() - t0;
    await subscription.stop();
    return { deliveries: messages * recipients, ms };
  } finally {
    await writer.end();
    await bus.close();
    await db.query("drop table if exists bench_raw");
    // The raw stream is this run's alone: it must not stay on the NATS server with its messages.
    await deleteStreams(NATS_URL, [stream]);
  }
}

/**
 * P3: one listening recipient per group, each in a child process of its own (latency-listener.ts,
 * so the senders' work here does not delay it); texts sent at `rate` messages/s, round robin over
 * the groups and their other members. Latency: the text's creation just before `sendMessage` to
 * the listener having processed and stored it (wall clock, same machine).
 */
async function latency(
  clients: TestClients,
  d: Deployment,
  groups: Group[],
  rate: number,
  total: number,
): Promise<number[]> {
  const latencies: number[] = [];
  const children: ChildProcess[] = [];
  try {
    for (const [g, group] of groups.entries()) {
      // The listener's store moves to the child: this process stops using that client.
      await (group.members[1] as PhoenixClient).close();
      const child = spawn(
        process.execPath,
        [
          "--conditions=source",
          "--import",
          "tsx",
          fileURLToPath(new URL("./latency-listener.ts", import.meta.url)),
          d.url,
          clients.storePath(`g${g}m1`),
          group.id,
        ],
        { stdio: ["pipe", "pipe", "inherit"] },
      );
      children.push(child);
      const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
      const ready = new Promise<void>((resolve, reject) => {
        child.once("exit", (code) => reject(new Error(`latency listener exited with ${code}`)));
        lines.on("line", (line) => {
          if (line === "ready") return resolve();
          const [, sentAt, processedAt] = line.split(" ");
          latencies.push(Number(processedAt) - Number(sentAt));
        });
      });
      await Promise.race([
        ready,
        sleep(120_000, undefined, { ref: false }).then(() => {
          throw new Error("latency listener not ready within 120 s");
        }),
      ]);
    }
    const senders = groups.map((g) => g.members.filter((_, i) => i !== 1));
    const t0 = performance.now();
    const sends: Promise<void>[] = [];
    for (let k = 0; k < total; k++) {
      const wait = t0 + (k * 1000) / rate - performance.now();
      if (wait > 0) await sleep(wait);
      const g = k % groups.length;
      const group = groups[g] as Group;
      const from = senders[g] as PhoenixClient[];
      const sender = from[Math.floor(k / groups.length) % from.length] as PhoenixClient;
      sends.push(sender.sendMessage(group.id, body(`p3-${k}`)));
    }
    await Promise.all(sends);
    const deadline = Date.now() + 120_000;
    while (latencies.length < total && Date.now() < deadline) await sleep(50);
    if (latencies.length < total) log(`only ${latencies.length} of ${total} messages arrived in time`);
  } finally {
    await Promise.all(
      children.map(async (child) => {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.stdin?.end();
        await Promise.race([exited, sleep(10_000, undefined, { ref: false })]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }),
    );
  }
  return latencies.sort((a, b) => a - b);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? Number.NaN;
}

const rows: [string, string][] = [];
/** What goes to the JSON result file (writeResult, end of file): deliveries/s by QS replicas. */
const series: {
  qsReplicas: number;
  deliveriesPerSecond: number;
  rawDeliveriesPerSecond: number;
  load: number[];
}[] = [];
const startedAt = new Date().toISOString();
const loadStart = loadavg();
log(`starting the deployment (${QUICK ? "quick" : "full"} run)`);
const deployment = await startDeployment({ kind: "services", domain: "bench.test", logLevel: "warn" });
const clients = await TestClients.create("phoenix-bench-");
const queueDatabase = deployment.storage.databases.find((name) => name.endsWith("_queue"));
if (queueDatabase === undefined) throw new Error("the deployment has no queue database");
const queueUrl = new URL(process.env.DATABASE_URL);
queueUrl.pathname = `/${queueDatabase}`;
const db = new pg.Client({ connectionString: queueUrl.toString() });
await db.connect();
try {
  log("deployment ready; registering, connecting, creating groups");
  const groups = await makeGroups(clients, deployment, GROUPS, MEMBERS);
  const senders = GROUPS * MEMBERS;
  rows.push(["load", `${GROUPS} groups × ${MEMBERS} members, all sending, ${TEXT_BYTES} B texts`]);

  log("P1: end to end");
  rows.push(["P1 loadavg before e2e", loadavg()]);
  const cpuBefore = cpuSeconds(deployment);
  const p1Start = process.hrtime.bigint() / 1000n;
  const e2e = await throughputE2e(db, groups);
  const cpuAfter = cpuSeconds(deployment);
  // Monotonic µs, the clock of V8's CPU profiles: `cpu-profile-top.mjs --window START END`.
  log(
    `P1 window (monotonic µs): ${p1Start} ${process.hrtime.bigint() / 1000n}; pids: ${deployment.processes
      .map((p) => `${p.name} ${p.pid}`)
      .join(", ")}`,
  );
  rows.push(["P1 CPU during the e2e run", cpuLine(cpuBefore, cpuAfter)]);
  let serviceCpu = 0;
  for (const [name, seconds] of cpuAfter)
    if (name !== OWN_CPU) serviceCpu += seconds - (cpuBefore.get(name) ?? 0);
  rows.push([
    "P1 one sendMessage call (client side)",
    `p50 ${percentile(e2e.sendMs, 50).toFixed(0)} ms, p99 ${percentile(e2e.sendMs, 99).toFixed(0)} ms`,
  ]);
  rows.push([
    "P1 clients' event loop delay",
    `p50 ${e2e.loopDelayMs[0]?.toFixed(0)} ms, p99 ${e2e.loopDelayMs[1]?.toFixed(0)} ms, max ${e2e.loopDelayMs[2]?.toFixed(0)} ms`,
  ]);
  log("P1: raw pipeline");
  rows.push(["P1 loadavg before raw", loadavg()]);
  const rawCpu0 = process.cpuUsage();
  const raw = await throughputRaw(db, queueUrl.toString(), senders, senders * MESSAGES);
  const rawCpu = process.cpuUsage(rawCpu0);
  const rawCpuMs = (rawCpu.user + rawCpu.system) / 1000;
  const perSecond = (r: { deliveries: number; ms: number }) => (r.deliveries * 1000) / r.ms;
  rows.push([
    "P1 end to end (SendMessage → queue rows)",
    `${perSecond(e2e).toFixed(0)} deliveries/s (${e2e.deliveries} in ${e2e.ms.toFixed(0)} ms)`,
  ]);
  rows.push([
    "P1 raw pipeline (publish → consume → insert)",
    `${perSecond(raw).toFixed(0)} deliveries/s (${raw.deliveries} in ${raw.ms.toFixed(0)} ms)`,
  ]);
  rows.push(["P1 end to end / raw", `${((perSecond(e2e) / perSecond(raw)) * 100).toFixed(1)} %`]);
  series.push({
    qsReplicas: 1,
    deliveriesPerSecond: perSecond(e2e),
    rawDeliveriesPerSecond: perSecond(raw),
    load: loadavg().split(" ").map(Number),
  });
  // Postgres and NATS are shared and left out on both sides.
  const e2eCpuPerDelivery = (serviceCpu * 1000) / e2e.deliveries;
  const rawCpuPerDelivery = rawCpuMs / raw.deliveries;
  rows.push([
    "P1 CPU per delivery: services (e2e) | raw process",
    `${e2eCpuPerDelivery.toFixed(3)} ms | ${rawCpuPerDelivery.toFixed(3)} ms (raw/e2e ${((rawCpuPerDelivery / e2eCpuPerDelivery) * 100).toFixed(1)} %)`,
  ]);

  if (!QUICK) {
    log("P1: end to end with a second QS replica");
    const replica = await startQueueReplica(deployment);
    try {
      const before2 = cpuSeconds(deployment, [replica]);
      rows.push(["P1 (2 QS) loadavg before", loadavg()]);
      const e2e2 = await throughputE2e(db, groups);
      rows.push(["P1 (2 QS) CPU during the run", cpuLine(before2, cpuSeconds(deployment, [replica]))]);
      series.push({
        qsReplicas: 2,
        deliveriesPerSecond: perSecond(e2e2),
        rawDeliveriesPerSecond: perSecond(raw),
        load: loadavg().split(" ").map(Number),
      });
      rows.push([
        "P1 (2 QS) end to end",
        `${perSecond(e2e2).toFixed(0)} deliveries/s (${e2e2.deliveries} in ${e2e2.ms.toFixed(0)} ms), ${((perSecond(e2e2) / perSecond(raw)) * 100).toFixed(1)} % of raw`,
      ]);
    } finally {
      await replica.stop();
    }
  }

  const maxRate = perSecond(e2e) / (MEMBERS - 1);
  const rate = maxRate * LATENCY_RATE_FRACTION;
  log(`P3: latency at ${rate.toFixed(1)} messages/s`);
  rows.push(["P3 loadavg before", loadavg()]);
  const lat = await latency(clients, deployment, groups, rate, LATENCY_MESSAGES);
  const p50 = percentile(lat, 50);
  const p99 = percentile(lat, 99);
  rows.push([
    "P3 send → listening recipient (own process) processed it",
    `${lat.length} messages at ${rate.toFixed(1)}/s (${LATENCY_RATE_FRACTION} × ${maxRate.toFixed(1)} messages/s): min ${(lat[0] ?? Number.NaN).toFixed(0)} ms, p50 ${p50.toFixed(0)} ms, p99 ${p99.toFixed(0)} ms, max ${(lat.at(-1) ?? Number.NaN).toFixed(0)} ms`,
  ]);
  rows.push(["P3 p99 / p50", (p99 / p50).toFixed(2)]);
} finally {
  await db.end();
  await clients.close();
  await deployment.stop();
}
const width = Math.max(...rows.map(([k]) => k.length));
for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);

writeResult("e2e-throughput", {
  bench: "libs/test-harness/bench/e2e-throughput.bench.ts",
  what: `P1 recipient deliveries/s end to end (SendMessage → queue rows; ${GROUPS} groups × ${MEMBERS} members, ${MESSAGES} texts of ${TEXT_BYTES} B each) by QS replicas, with the raw pipeline of the same run`,
  date: startedAt,
  loadStart: loadStart.split(" ").map(Number),
  loadEnd: loadavg().split(" ").map(Number),
  series,
});

/**
 * Writes `result` (with the machine) as `<name>.json` to docs/perf/data, where
 * scripts/plot-perf.py reads it (PHOENIX_BENCH_OUT: another directory; a quick run: a temp one).
 */
function writeResult(name: string, result: Record<string, unknown>): void {
  const dir =
    process.env.PHOENIX_BENCH_OUT ??
    (QUICK
      ? join(tmpdir(), "phoenix-bench")
      : fileURLToPath(new URL("../../../docs/perf/data", import.meta.url)));
  mkdirSync(dir, { recursive: true });
  const machine = {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    memoryBytes: totalmem(),
    node: process.version,
  };
  writeFileSync(
    join(dir, `${name}.json`),
    `${JSON.stringify({ ...result, quick: QUICK, machine }, null, 2)}\n`,
  );
  console.error(`wrote ${join(dir, `${name}.json`)}`);
}
