// How cost grows with work (issue #16, "Scaling"), on the five-service deployment (Postgres +
// NATS, `startDeployment`) driven by real PhoenixClients:
// * memory: RSS and V8 heap used of every service process (read from /proc and from each
//   service's Prometheus endpoint) after 0, k, 2k, 4k… registered clients (each one QS queue) and
//   as many two-member groups, each with one message sent (so the DS has handled a commit and a
//   message for each group and the QS a delivery to a queue);
// * storage: row bytes (sum of pg_column_size of the rows) and on-disk bytes
//   (pg_total_relation_size: heap, TOAST and indexes, in 8 KiB pages) of every table of the four
//   databases, per registered client, per DS group by member count, and per stored queue message
//   (1 KiB texts that nobody fetches).
// DS commit time vs group size is services/delivery/bench/commit.bench.ts, QS throughput vs
// replicas libs/test-harness/bench/e2e-throughput.bench.ts; both write their series next to ours.
// Run: npm run bench -- scaling (needs the Postgres and NATS of DATABASE_URL / NATS_URL, default
// the local ones). Writes docs/perf/data/scaling-memory.json and scaling-storage.json
// (PHOENIX_BENCH_OUT: another directory); scripts/plot-perf.py draws them. Not a test: it asserts
// nothing. PHOENIX_BENCH_QUICK=1 runs tiny sizes and writes to a temp directory (its figures
// mean nothing). BENCH_PARTS=memory or =storage runs only that part. BENCH_MEMORY_STEP (default 32) and BENCH_MEMORY_STEPS (default 4: up to 8 × the
// step) change the memory series.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import type { PhoenixClient } from "@phoenix/client";
import pg from "pg";
import { connectUsers, syncUntil, TestClients } from "../src/clients.js";
import { type Deployment, startDeployment } from "../src/deployment.js";
import { pool } from "./pool.js";

process.env.DATABASE_URL ??= "postgres://postgres@127.0.0.1:5432/postgres";
process.env.NATS_URL ??= "nats://127.0.0.1:4222";

const QUICK = process.env.PHOENIX_BENCH_QUICK === "1";
/** Clients and groups added by the first memory step; each next step doubles the total. */
const MEMORY_STEP = QUICK ? 2 : Number(process.env.BENCH_MEMORY_STEP ?? 32);
const MEMORY_STEPS = QUICK ? 2 : Number(process.env.BENCH_MEMORY_STEPS ?? 4);
/** Member counts of the groups whose DS rows are measured. */
const GROUP_SIZES = QUICK ? [2, 3] : [2, 4, 8, 16, 32];
/** Totals of messages sent into the largest group, measured after each. */
const MESSAGE_TOTALS = QUICK ? [2, 4] : [25, 50, 100, 200];
/** Totals of registered clients measured for the per-client record bytes. */
const CLIENT_TOTALS = QUICK ? [2, 4] : [8, 16, 32];
const TEXT_BYTES = 1024;
const PARTS = (process.env.BENCH_PARTS ?? "memory,storage").split(",");
/** Concurrent client operations while building (keeps the 2-core machine's load modest). */
const CONCURRENCY = 4;
const OUT_DIR =
  process.env.PHOENIX_BENCH_OUT ??
  (QUICK
    ? join(tmpdir(), "phoenix-bench")
    : fileURLToPath(new URL("../../../docs/perf/data", import.meta.url)));

function loadavg(): number[] {
  return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).map(Number);
}

function log(line: string): void {
  console.error(`[${(performance.now() / 1000).toFixed(1)} s, load ${loadavg().join(" ")}] ${line}`);
}

// --- What a service process holds -------------------------------------------------------------

interface ProcessMemory {
  rssBytes: number;
  heapUsedBytes: number | null;
}

/** The port of each service's Prometheus endpoint (bound to port 0; its info line names it). */
function metricsPort(d: Deployment, name: string): number | undefined {
  const p = d.processes.find((x) => x.name === name);
  const line = p?.lines.find((l) => l.msg === "metrics listening");
  return line === undefined ? undefined : Number(line.port);
}

async function processMemory(d: Deployment, name: string): Promise<ProcessMemory> {
  const p = d.processes.find((x) => x.name === name);
  if (p?.pid === undefined) throw new Error(`the deployment has no ${name} process`);
  const status = readFileSync(`/proc/${p.pid}/status`, "utf8");
  const rssKiB = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]);
  let heapUsedBytes: number | null = null;
  const port = metricsPort(d, name);
  // The least of three samples a second apart: heap used only falls when V8 collects.
  for (let i = 0; port !== undefined && i < 3; i++) {
    if (i > 0) await sleep(1000);
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const match = /^nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)/m.exec(text);
    if (match?.[1] !== undefined)
      heapUsedBytes = Math.min(heapUsedBytes ?? Number.POSITIVE_INFINITY, Number(match[1]));
  }
  return { rssBytes: rssKiB * 1024, heapUsedBytes };
}

// --- What the databases hold ------------------------------------------------------------------

interface TableSize {
  rows: number;
  /** Sum of pg_column_size of the rows (tuple header and data as stored, compressed or not). */
  rowBytes: number;
  /** pg_total_relation_size: heap, TOAST and indexes, whole pages. */
  totalBytes: number;
}

type Sizes = Record<string, TableSize>;

/** Every table of every database of the deployment, keyed `<service>.<schema>.<table>`. */
async function tableSizes(dbs: Map<string, pg.Client>): Promise<Sizes> {
  const out: Sizes = {};
  for (const [service, db] of dbs) {
    const tables = await db.query<{ schema: string; name: string; total: string }>(
      `select schemaname as schema, relname as name, pg_total_relation_size(relid)::text as total
       from pg_stat_user_tables order by 1, 2`,
    );
    for (const t of tables.rows) {
      const q = `"${t.schema}"."${t.name}"`;
      const r = await db.query<{ n: number; bytes: string }>(
        `select count(*)::int as n, coalesce(sum(pg_column_size(t.*)), 0)::text as bytes from ${q} t`,
      );
      out[`${service}.${t.schema}.${t.name}`] = {
        rows: r.rows[0]?.n ?? 0,
        rowBytes: Number(r.rows[0]?.bytes ?? 0),
        totalBytes: Number(t.total),
      };
    }
  }
  return out;
}

/** `after - before` per table, only the tables that changed. */
function delta(before: Sizes, after: Sizes): Sizes {
  const out: Sizes = {};
  for (const [key, a] of Object.entries(after)) {
    const b = before[key] ?? { rows: 0, rowBytes: 0, totalBytes: 0 };
    const d = {
      rows: a.rows - b.rows,
      rowBytes: a.rowBytes - b.rowBytes,
      totalBytes: a.totalBytes - b.totalBytes,
    };
    if (d.rows !== 0 || d.rowBytes !== 0 || d.totalBytes !== 0) out[key] = d;
  }
  return out;
}

function sumOf(sizes: Sizes, prefix: string): TableSize {
  const out = { rows: 0, rowBytes: 0, totalBytes: 0 };
  for (const [key, s] of Object.entries(sizes)) {
    if (!key.startsWith(prefix)) continue;
    out.rows += s.rows;
    out.rowBytes += s.rowBytes;
    out.totalBytes += s.totalBytes;
  }
  return out;
}

/** The DS's group rows: group id (hex) → stored state bytes. */
async function groupStates(db: pg.Client): Promise<Map<string, number>> {
  const r = await db.query<{ id: string; bytes: number }>(
    "select encode(group_id, 'hex') as id, octet_length(state) as bytes from groups",
  );
  return new Map(r.rows.map((row) => [row.id, row.bytes]));
}

// --- Building load with real clients ----------------------------------------------------------

function text(tag: string): string {
  return `${tag} `.padEnd(TEXT_BYTES, "x");
}

/** A group of `creator` and `others` (connected to the creator already), every member joined. */
async function makeGroup(creator: PhoenixClient, others: PhoenixClient[], title: string): Promise<string> {
  const id = await creator.createConversation(title);
  if (others.length > 0)
    await creator.invite(
      id,
      others.map((o) => o.userId),
    );
  return id;
}

/** Each member syncs until it has joined, a few at a time (31 at once overran the edge gateway). */
async function waitJoined(members: PhoenixClient[], id: string): Promise<void> {
  await pool(CONCURRENCY, members.length, async (i) => {
    const m = members[i] as PhoenixClient;
    await syncUntil(m, () => m.conversations().some((c) => c.id === id), `group ${id}`, 120_000);
  });
}

function machine(): Record<string, unknown> {
  return {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    memoryBytes: totalmem(),
    node: process.version,
  };
}

function writeResult(name: string, result: Record<string, unknown>): void {
  mkdirSync(OUT_DIR, { recursive: true });
  const file = join(OUT_DIR, `${name}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  log(`wrote ${file}`);
}

// --- The run ----------------------------------------------------------------------------------

const SERVICES = ["auth", "delivery", "queue", "federation-gateway", "edge-gateway"] as const;
const startedAt = new Date().toISOString();
const loadStart = loadavg();
log(`starting the deployment (${QUICK ? "quick" : "full"} run)`);
// Info level: each service logs the port of its metrics endpoint (heap figures) at start.
const deployment = await startDeployment({ kind: "services", domain: "scaling.test", logLevel: "info" });
const clients = await TestClients.create("phoenix-scaling-");
const dbs = new Map<string, pg.Client>();
try {
  for (const name of deployment.storage.databases) {
    const url = new URL(process.env.DATABASE_URL);
    url.pathname = `/${name}`;
    const db = new pg.Client({ connectionString: url.toString() });
    await db.connect();
    dbs.set(name.slice(name.lastIndexOf("_") + 1), db);
  }
  const delivery = dbs.get("delivery");
  if (delivery === undefined) throw new Error("the deployment has no delivery database");
  let registered = 0;
  const register = async (): Promise<PhoenixClient> =>
    clients.register(deployment.url, deployment.domain, `u${registered++}`);

  const memory: {
    clients: number;
    groups: number;
    load: number[];
    processes: Record<string, ProcessMemory>;
  }[] = [];
  const clientPoints: { clients: number; delta: Sizes; load: number[] }[] = [];
  const groupPoints: { members: number; stateBytes: number; delta: Sizes; load: number[] }[] = [];
  const messagePoints: { messages: number; deliveries: number; delta: Sizes; load: number[] }[] = [];
  // Memory: an owner and a partner (connected), then per step more clients and more groups.
  if (PARTS.includes("memory")) {
    log("memory: owner and partner");
    const [owner, partner] = [await register(), await register()];
    await connectUsers(owner, partner);
    await sleep(2000);
    const measureMemory = async (clientCount: number, groupCount: number): Promise<void> => {
      // Let the relays, consumers and timers settle; V8 collects when it likes (no --expose-gc).
      await sleep(2000);
      const processes: Record<string, ProcessMemory> = {};
      for (const s of SERVICES) processes[s] = await processMemory(deployment, s);
      memory.push({ clients: clientCount, groups: groupCount, load: loadavg(), processes });
      const mib = (b: number | null) => (b === null ? "?" : (b / 2 ** 20).toFixed(1));
      log(
        `memory at ${clientCount} clients, ${groupCount} groups: ${SERVICES.map(
          (s) =>
            `${s} RSS ${mib(processes[s]?.rssBytes ?? null)} MiB heap ${mib(processes[s]?.heapUsedBytes ?? null)} MiB`,
        ).join("; ")}`,
      );
    };
    // The owner and partner and their connection group are the baseline.
    await measureMemory(0, 0);
    let memClients = 0;
    let memGroups = 0;
    for (let step = 0; step < MEMORY_STEPS; step++) {
      const target = MEMORY_STEP * 2 ** step;
      const add = target - memClients;
      await pool(CONCURRENCY, add, async () => {
        await register();
      });
      memClients = target;
      // Groups of the owner and the partner, one message each: a commit and a fan-out per group.
      // One client does one thing at a time.
      await pool(1, target - memGroups, async (i) => {
        const id = await makeGroup(owner, [partner], `mem ${memGroups + i}`);
        await owner.sendMessage(id, text(`mem ${i}`));
      });
      memGroups = target;
      // The partner takes its welcomes and messages off its queue now and then (bounded queue).
      await partner.sync();
      await measureMemory(memClients, memGroups);
    }
    writeResult(QUICK ? "scaling-memory-quick" : "scaling-memory", {
      bench: "libs/test-harness/bench/scaling.bench.ts",
      what: "RSS (/proc VmRSS) and V8 heap used (nodejs_heap_size_used_bytes) of each service process after registering `clients` clients and creating `groups` two-member groups with one 1 KiB message each (plus a baseline owner, partner and their connection)",
      quick: QUICK,
      date: startedAt,
      machine: machine(),
      loadStart,
      loadEnd: loadavg(),
      points: memory,
    });
  }

  // Storage per client record: deltas over registrations.
  if (PARTS.includes("storage")) {
    log("storage: clients");
    const pool0 = await tableSizes(dbs);
    const storageClients: PhoenixClient[] = [];
    for (const total of CLIENT_TOTALS) {
      const add = total - storageClients.length;
      await pool(CONCURRENCY, add, async () => {
        storageClients.push(await register());
      });
      clientPoints.push({ clients: total, delta: delta(pool0, await tableSizes(dbs)), load: loadavg() });
      log(`storage: ${total} clients registered`);
    }

    // Storage per DS group by member count: one creator connected to everyone it will invite.
    log("storage: groups");
    const maxSize = Math.max(...GROUP_SIZES);
    const creator = storageClients[0] as PhoenixClient;
    const invitees = storageClients.slice(1, maxSize);
    if (invitees.length < maxSize - 1) throw new Error("not enough clients for the largest group");
    for (const other of invitees) await connectUsers(creator, other);
    let largest = "";
    let largestMembers: PhoenixClient[] = [];
    for (const size of GROUP_SIZES) {
      const before = await tableSizes(dbs);
      const statesBefore = await groupStates(delivery);
      const members = invitees.slice(0, size - 1);
      const id = await makeGroup(creator, members, `storage ${size}`);
      await waitJoined(members, id);
      const statesAfter = await groupStates(delivery);
      const fresh = [...statesAfter].filter(([g]) => !statesBefore.has(g));
      if (fresh.length !== 1) throw new Error(`expected one new DS group, found ${fresh.length}`);
      const stateBytes = fresh[0]?.[1] ?? 0;
      groupPoints.push({
        members: size,
        stateBytes,
        delta: delta(before, await tableSizes(dbs)),
        load: loadavg(),
      });
      log(`storage: group of ${size}: DS state ${stateBytes} B`);
      if (size === maxSize) {
        largest = id;
        largestMembers = [creator, ...members];
      }
    }

    // Storage per queue message: texts sent into the largest group, nobody fetching.
    log(`storage: messages in the group of ${maxSize}`);
    const queueRows = async (): Promise<number> =>
      (await tableSizes(new Map([["queue", dbs.get("queue") as pg.Client]])))["queue.public.qs_messages"]
        ?.rows ?? 0;
    const messages0 = await tableSizes(dbs);
    const rows0 = await queueRows();
    let sent = 0;
    for (const total of MESSAGE_TOTALS) {
      await pool(CONCURRENCY, total - sent, async (i) => {
        const from = largestMembers[(sent + i) % largestMembers.length] as PhoenixClient;
        await from.sendMessage(largest, text(`storage ${sent + i}`));
      });
      sent = total;
      const deliveries = total * (maxSize - 1);
      const deadline = Date.now() + 120_000;
      while ((await queueRows()) < rows0 + deliveries) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${deliveries} queue rows`);
        await sleep(100);
      }
      messagePoints.push({
        messages: total,
        deliveries,
        delta: delta(messages0, await tableSizes(dbs)),
        load: loadavg(),
      });
      log(`storage: ${total} messages (${deliveries} deliveries) stored`);
    }

    writeResult(QUICK ? "scaling-storage-quick" : "scaling-storage", {
      bench: "libs/test-harness/bench/scaling.bench.ts",
      what: `Postgres table growth (rows; rowBytes = sum of pg_column_size of the rows; totalBytes = pg_total_relation_size, 8 KiB pages, indexes and TOAST included) per registered client, per DS group by member count (stateBytes: the stored, encrypted and padded group state), and per ${TEXT_BYTES} B text sent into a group of ${maxSize} (one queue row per recipient, never fetched)`,
      quick: QUICK,
      date: startedAt,
      machine: machine(),
      loadStart,
      loadEnd: loadavg(),
      clients: clientPoints,
      groups: groupPoints,
      messages: { groupMembers: maxSize, textBytes: TEXT_BYTES, points: messagePoints },
    });
  }
  summary(memory, clientPoints, groupPoints, messagePoints);
} finally {
  for (const db of dbs.values()) await db.end().catch(() => undefined);
  await clients.close();
  await deployment.stop();
}

function summary(
  memory: { clients: number; groups: number; processes: Record<string, ProcessMemory> }[],
  clientPoints: { clients: number; delta: Sizes }[],
  groupPoints: { members: number; stateBytes: number; delta: Sizes }[],
  messagePoints: { messages: number; deliveries: number; delta: Sizes }[],
): void {
  const rows: [string, string][] = [];
  const mib = (b: number | null | undefined) => (b == null ? "?" : `${(b / 2 ** 20).toFixed(1)}`);
  for (const m of memory)
    rows.push([
      `memory at ${m.clients} clients / ${m.groups} groups (RSS | heap MiB)`,
      ["delivery", "queue", "auth", "edge-gateway"]
        .map((s) => `${s} ${mib(m.processes[s]?.rssBytes)} | ${mib(m.processes[s]?.heapUsedBytes)}`)
        .join(", "),
    ]);
  for (const c of clientPoints) {
    const auth = sumOf(c.delta, "auth.");
    const queue = sumOf(c.delta, "queue.");
    rows.push([
      `per client (${c.clients} registered): row | disk bytes`,
      `auth ${(auth.rowBytes / c.clients).toFixed(0)} | ${(auth.totalBytes / c.clients).toFixed(0)}, queue ${(queue.rowBytes / c.clients).toFixed(0)} | ${(queue.totalBytes / c.clients).toFixed(0)}`,
    ]);
  }
  for (const g of groupPoints)
    rows.push([
      `DS group of ${g.members}`,
      `state ${g.stateBytes} B (${(g.stateBytes / g.members).toFixed(0)} B per member)`,
    ]);
  for (const m of messagePoints) {
    const q = m.delta["queue.public.qs_messages"] ?? { rows: 0, rowBytes: 0, totalBytes: 0 };
    const queue = sumOf(m.delta, "queue.");
    rows.push([
      `${m.messages} messages, ${m.deliveries} deliveries`,
      `qs_messages ${(q.rowBytes / m.deliveries).toFixed(0)} row B | ${(q.totalBytes / m.deliveries).toFixed(0)} disk B per delivery; whole QS ${(queue.totalBytes / m.deliveries).toFixed(0)} disk B per delivery`,
    ]);
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
}
