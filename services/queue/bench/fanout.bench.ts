// Fan-out throughput: deliveries per second through the real QS consumer (JetStream → sealed
// config → blocklist → queue ratchet → one Postgres transaction per fetched batch → ack) against
// the raw pipeline cost on the same machine in the same run (the same JetStream consume, the same
// batching and the same rows inserted, without the QS's crypto and lookups).
// Run: npm run bench -- queue (needs the Postgres and NATS of DATABASE_URL / NATS_URL, default
// the local ones). Not a test: it asserts nothing, it prints a table.
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { type common, events, queue } from "@phoenix/proto";
import { type Bus, type BusMessage, connectNatsBus } from "@phoenix/runtime/bus";
import { type Database, transaction } from "@phoenix/runtime/db";
import { createChannel, createServiceClient } from "@phoenix/runtime/grpc";
import { runModule } from "@phoenix/runtime/module";
import { createTestDatabase } from "@phoenix/runtime/testing";
import { sql } from "drizzle-orm";
import { Batcher } from "../src/consumer/batcher.js";
import { queueModuleWith } from "../src/module.js";
import { QUEUE_MIGRATIONS } from "../src/setup.js";
import { TestClient } from "../test/support/test-client.js";

process.env.DATABASE_URL ??= "postgres://postgres@127.0.0.1:5432/postgres";
const NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";

// PHOENIX_BENCH_QUICK=1 (npm run bench -- --quick): tiny sizes, only proves the bench runs.
const QUICK = process.env.PHOENIX_BENCH_QUICK === "1";
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? (QUICK ? 20 : 200));
const FANOUTS = Number(process.env.BENCH_FANOUTS ?? (QUICK ? 50 : 2000));
const RECIPIENTS = Number(process.env.BENCH_RECIPIENTS ?? 10);
const PAYLOAD = 1024;
const IN_FLIGHT = 64;

const suffix = randomBytes(6).toString("hex");
const prefix = `b${suffix}.`;
const streams = {
  fanOut: `QSB_FANOUT_${suffix}`,
  queueDeleted: `QSB_QDEL_${suffix}`,
  federation: `QSB_FED_${suffix}`,
};
const rawStream = `QSB_RAW_${suffix}`;

async function publishAll(bus: Bus, subject: string, bodies: Uint8Array[], ids: string[]): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      for (;;) {
        const i = next++;
        if (i >= bodies.length) return;
        await bus.publish(subject, bodies[i] as Uint8Array, { id: ids[i] as string });
      }
    }),
  );
}

async function waitForCount(
  db: Database,
  query: string,
  expected: number,
  timeoutMs = 300_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 1_000_000; i++) {
    const rows = (await db.execute(sql.raw(query))) as unknown as { rows: { n: number }[] };
    if ((rows.rows[0]?.n ?? 0) >= expected) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${expected} rows (${query})`);
    await sleep(20);
  }
}

const db = await createTestDatabase({ migrationsFolder: QUEUE_MIGRATIONS, poolMax: 10 });
const bus = await connectNatsBus({ servers: NATS_URL, name: "qs-bench" });
const rows: [string, string][] = [];
try {
  // ---- the real QS consumer ----
  const server = await runModule(
    queueModuleWith({ hooks: { sweepIntervalMs: 0, keyRefreshIntervalMs: 0 } }),
    {
      env: {},
      signals: false,
      exit: false,
      resources: { database: db, bus },
      overrides: {
        QS_DOMAIN: "bench.example",
        QS_STORAGE_KEY: randomBytes(32).toString("hex"),
        QS_FANOUT_STREAM: streams.fanOut,
        QS_QUEUE_DELETED_STREAM: streams.queueDeleted,
        QS_FEDERATION_STREAM: streams.federation,
        QS_SUBJECT_PREFIX: prefix,
        QS_FANOUT_DURABLE: `qsb-${suffix}`,
        // Every bench client registers from 127.0.0.1.
        QS_RATE_CREATE_USER_PER_CALLER: 0,
        LOG_LEVEL: "silent",
        GRPC_HOST: "127.0.0.1",
        GRPC_PORT: 0,
        METRICS_PORT: 0,
      },
    },
  );
  const channel = createChannel(`127.0.0.1:${server.grpcPort}`);
  const client = createServiceClient(queue.QueueServiceService, channel);
  const keys = await client.getQueueConfigEncryptionKey({});
  const refs: common.QsReference[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    refs.push((await TestClient.register(() => client, keys, "bench.example")).qsReference());
  }
  const fanOuts = Array.from({ length: FANOUTS }, () => {
    const start = Math.floor(Math.random() * CLIENTS);
    const fanOutId = new Uint8Array(randomBytes(16));
    return events.FanOut.encode({
      fanOutId,
      groupId: { uuid: new Uint8Array(randomBytes(16)), domain: "bench.example" },
      recipients: Array.from(
        { length: RECIPIENTS },
        (_, k) => refs[(start + k) % CLIENTS] as common.QsReference,
      ),
      payload: new Uint8Array(randomBytes(PAYLOAD)),
      suppressNotifications: true,
    }).finish();
  });
  const deliveries = FANOUTS * RECIPIENTS;
  const t0 = performance.now();
  await publishAll(
    bus,
    `${prefix}phoenix.fanout`,
    fanOuts,
    fanOuts.map((_, i) => `qs-${suffix}-${i}`),
  );
  const published = performance.now();
  // Every queue holds its Init message plus what the fan-outs brought (key updates included).
  await waitForCount(db.db, `select count(*)::int as n from qs_messages where seq > 0`, deliveries);
  const qsMs = performance.now() - t0;
  channel.close();
  await server.process.shutdown("done");

  // ---- the raw pipeline: same bus, same batching, same rows, no QS work ----
  await db.db.execute(
    sql.raw("create table bench_raw (k bytea not null, seq int8 not null, m bytea not null)"),
  );
  await bus.ensureStream({ name: rawStream, subjects: [`${prefix}raw`] });
  const batcher = new Batcher<BusMessage>(
    async (messages) => {
      await transaction(db.db, async (tx) => {
        const values = messages.flatMap((m) =>
          Array.from(
            { length: RECIPIENTS },
            (_, k) => sql`(${m.data.subarray(0, 16)}, ${k}, ${m.data.subarray(0, PAYLOAD)})`,
          ),
        );
        for (let i = 0; i < values.length; i += 1000) {
          await tx.execute(
            sql`insert into bench_raw (k, seq, m) values ${sql.join(values.slice(i, i + 1000), sql`, `)}`,
          );
        }
      });
    },
    // As the QS's consumer: batches kept in order, at most 256 fan-outs unacked.
    { maxItems: 256, maxWeight: 5000, orderedRetryDelaysMs: [250, 1000, 5000] },
  );
  const raw = await bus.consume(
    { stream: rawStream, durable: `raw-${suffix}`, maxInFlight: 256, maxAckPending: 256 },
    (m) => batcher.add(m),
  );
  const r0 = performance.now();
  await publishAll(
    bus,
    `${prefix}raw`,
    fanOuts,
    fanOuts.map((_, i) => `raw-${suffix}-${i}`),
  );
  await waitForCount(db.db, "select count(*)::int as n from bench_raw", deliveries);
  const rawMs = performance.now() - r0;
  await raw.stop();

  const perSecond = (ms: number) => Math.round((deliveries * 1000) / ms);
  rows.push([
    "fan-outs × recipients (1 KiB payload)",
    `${FANOUTS} × ${RECIPIENTS} = ${deliveries} deliveries`,
  ]);
  rows.push(["QS consumer, end to end", `${perSecond(qsMs)} deliveries/s (${Math.round(qsMs)} ms)`]);
  rows.push(["  of which publishing", `${Math.round(published - t0)} ms`]);
  rows.push([
    "raw pipeline (publish → consume → batched insert → ack)",
    `${perSecond(rawMs)} deliveries/s (${Math.round(rawMs)} ms)`,
  ]);
  rows.push(["QS / raw", `${((rawMs / qsMs) * 100).toFixed(0)} %`]);
} finally {
  await bus.close();
  const nc = await connect({ servers: NATS_URL });
  const jsm = await jetstreamManager(nc);
  for (const s of [...Object.values(streams), rawStream]) await jsm.streams.delete(s).catch(() => false);
  await nc.close();
  await db.close();
}
const width = Math.max(...rows.map(([k]) => k.length));
for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
