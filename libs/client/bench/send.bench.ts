// A client's own cost per message, as the end-to-end path (P1, P3) sees it: CPU of this process
// (the clients only — the homeserver runs as a separate all-in-one process) per message sent by
// one member of a group, and per message received by another member's sync(), with the
// public-key operations of each side counted, the time the event loop was busy (what one client
// takes from the others in a process: synchronous disk syncs included, which CPU time misses) and
// the wall time of a send.
// A group of MEMBERS users (default 10, as in P1) is set up; then `alice` sends MESSAGES 1 KiB
// texts one after another, and `bob` syncs them all.
// Usage: npm run bench -- send
// PHOENIX_BENCH_QUICK=1 (npm run bench -- --quick): 2 members, 5 messages; SEND_BENCH_MESSAGES=N,
// SEND_BENCH_MEMBERS=N override; SEND_BENCH_PROFILE=DIR writes a CPU profile of each measured phase
// (send.cpuprofile, receive.cpuprofile) to DIR; SEND_BENCH_CLIENT=PATH benches another copy of the
// client's sources (e.g. an older commit's libs/client/src/index.ts checked out inside the repo).
import crypto from "node:crypto";
import { readFileSync } from "node:fs";
import { syncBuiltinESMExports } from "node:module";

// Count every Ed25519 signature and verification, and every X25519 (HPKE) agreement, of this
// process: the client's modules import them from node:crypto, patched before they are loaded.
const ops = { sign: 0, verify: 0, dh: 0 };
const { sign, verify, diffieHellman } = crypto;
crypto.sign = ((...args: Parameters<typeof sign>) => {
  ops.sign++;
  return sign(...args);
}) as typeof sign;
crypto.verify = ((...args: Parameters<typeof verify>) => {
  ops.verify++;
  return verify(...args);
}) as typeof verify;
crypto.diffieHellman = ((...args: Parameters<typeof diffieHellman>) => {
  ops.dh++;
  return diffieHellman(...args);
}) as typeof diffieHellman;
syncBuiltinESMExports();

const { mkdtemp, rm, writeFile } = await import("node:fs/promises");
const { Session } = await import("node:inspector/promises");
const { tmpdir } = await import("node:os");
const { join } = await import("node:path");
const { createRestTransport, PhoenixClient } = (await import(
  process.env.SEND_BENCH_CLIENT ?? "../src/index.js"
)) as typeof import("../src/index.js");
const { connectUsers, startDeployment, syncUntil } = await import("@phoenix/test-harness");

const quick = process.env.PHOENIX_BENCH_QUICK === "1";
const MESSAGES = Number(process.env.SEND_BENCH_MESSAGES ?? (quick ? 5 : 200));
const MEMBERS = Number(process.env.SEND_BENCH_MEMBERS ?? (quick ? 2 : 10));
const TEXT = "x".repeat(1024);
const PROFILE = process.env.SEND_BENCH_PROFILE;

type Client = import("../src/index.js").PhoenixClient;

function loadavg(): string {
  try {
    return readFileSync("/proc/loadavg", "utf8").trim();
  } catch {
    return "n/a";
  }
}

/** Time the event loop was busy, ms. */
function busyMs(): number {
  return performance.eventLoopUtilization().active;
}

/** CPU (user + system) of this process, ms. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function takeOps(n: number): string {
  const row = `${(ops.sign / n).toFixed(2)} sign, ${(ops.verify / n).toFixed(2)} verify, ${(ops.dh / n).toFixed(2)} X25519`;
  ops.sign = ops.verify = ops.dh = 0;
  return row;
}

/** Runs `fn` under the CPU profiler when SEND_BENCH_PROFILE is set. */
async function profiled<T>(name: string, fn: () => Promise<T>): Promise<T> {
  if (PROFILE === undefined) return fn();
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.start");
  try {
    return await fn();
  } finally {
    const { profile } = await session.post("Profiler.stop");
    await writeFile(join(PROFILE, `${name}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? Number.NaN;
}

const dir = await mkdtemp(join(tmpdir(), "phoenix-send-bench-"));
console.log(`loadavg before start: ${loadavg()}`);
const deployment = await startDeployment({ kind: "all-in-one", domain: "bench.test", logLevel: "warn" });
const transports: ReturnType<typeof createRestTransport>[] = [];
const clients: Client[] = [];
try {
  const register = async (name: string): Promise<Client> => {
    const transport = createRestTransport(deployment.url);
    transports.push(transport);
    const client = await PhoenixClient.register({
      transport,
      storePath: join(dir, `${name}.sqlite`),
      domain: deployment.domain,
      displayName: name,
    });
    clients.push(client);
    return client;
  };
  const alice = await register("alice");
  const others: Client[] = [];
  for (let i = 1; i < MEMBERS; i++) others.push(await register(`member${i}`));
  const bob = others[0];
  if (bob === undefined) throw new Error("SEND_BENCH_MEMBERS must be at least 2");
  for (const other of others) await connectUsers(alice, other);
  const group = await alice.createConversation("bench");
  await alice.invite(
    group,
    others.map((o) => o.userId),
  );
  await syncUntil(bob, () => bob.conversations().some((c) => c.id === group), "the Welcome");
  await alice.sendMessage(group, "warm-up");
  await syncUntil(bob, () => bob.messages(group).some((m) => m.body === "warm-up"), "the warm-up");
  await alice.sync();
  await bob.sync();

  console.log(
    `\ngroup of ${MEMBERS}, ${MESSAGES} messages of ${TEXT.length} B; loadavg before: ${loadavg()}`,
  );
  takeOps(1);
  const walls: number[] = [];
  const cpu0 = cpuMs();
  const busy0 = busyMs();
  const t0 = performance.now();
  await profiled("send", async () => {
    for (let i = 0; i < MESSAGES; i++) {
      const started = performance.now();
      await alice.sendMessage(group, TEXT);
      walls.push(performance.now() - started);
    }
  });
  const sendCpu = (cpuMs() - cpu0) / MESSAGES;
  const sendBusy = (busyMs() - busy0) / MESSAGES;
  const sendWall = (performance.now() - t0) / MESSAGES;
  const sendOps = takeOps(MESSAGES);
  walls.sort((a, b) => a - b);

  const before = bob.messages(group).length;
  const cpu1 = cpuMs();
  const busy1 = busyMs();
  const t1 = performance.now();
  let received = 0;
  await profiled("receive", async () => {
    for (let round = 0; round < 100 && received < MESSAGES; round++) {
      await bob.sync();
      received = bob.messages(group).length - before;
    }
  });
  if (received !== MESSAGES) throw new Error(`bob received ${received} of ${MESSAGES} messages`);
  const receiveCpu = (cpuMs() - cpu1) / MESSAGES;
  const receiveBusy = (busyMs() - busy1) / MESSAGES;
  const receiveWall = (performance.now() - t1) / MESSAGES;
  const receiveOps = takeOps(MESSAGES);

  console.log(
    `send     client CPU ${sendCpu.toFixed(2)} ms/message, event loop busy ${sendBusy.toFixed(2)} ms/message, wall ${sendWall.toFixed(2)} ms/message ` +
      `(p50 ${percentile(walls, 0.5).toFixed(1)}, p99 ${percentile(walls, 0.99).toFixed(1)} ms); ${sendOps}`,
  );
  console.log(
    `receive  client CPU ${receiveCpu.toFixed(2)} ms/message, event loop busy ${receiveBusy.toFixed(2)} ms/message, wall ${receiveWall.toFixed(2)} ms/message ` +
      `(sync); ${receiveOps}`,
  );
  console.log(`loadavg after: ${loadavg()}`);
} finally {
  for (const client of clients) await client.close().catch(() => undefined);
  for (const transport of transports) transport.close();
  await deployment.stop();
  await rm(dir, { recursive: true, force: true });
}
