// The operational gauges observed moving in real scenarios: a bus that goes away, a pool that
// runs dry, a consumer that stops.
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { OUTBOX_PAYLOAD, PayloadSealer } from "@phoenix/crypto";
import { sql } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { createEmbeddedBus } from "../bus/embedded-bus.js";
import { connectNatsBus } from "../bus/nats-bus.js";
import type { Bus, BusMessage } from "../bus/types.js";
import { openDatabase } from "../db/open-database.js";
import { transaction } from "../db/transaction.js";
import { Readiness } from "../health/readiness.js";
import { OutboxRelay } from "../outbox/relay.js";
import { writeOutbox } from "../outbox/write-outbox.js";
import { eventually } from "../testing/eventually.js";
import { freePort } from "../testing/local-ports.js";
import { type PrivateNats, privateNats } from "../testing/private-nats.js";
import { createTestDatabase, createTestPglite, type TestDatabase } from "../testing/test-database.js";
import { createMetrics } from "./create-metrics.js";
import { type MetricsServer, startMetricsServer } from "./metrics-server.js";
import {
  registerBusMetrics,
  registerOutboxMetrics,
  registerPoolMetrics,
  registerReadinessMetric,
} from "./operational-metrics.js";
import { type ParsedMetrics, parsePrometheusText, sampleValue } from "./prometheus-text.js";

const migrationsFolder = fileURLToPath(new URL("../db/test-fixture/migrations", import.meta.url));

/** Released after each test, last registered first. */
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

/** A registry served on loopback, scraped over HTTP like Prometheus does. */
async function served(): Promise<{
  registry: ReturnType<typeof createMetrics>["registry"];
  scrape(): Promise<ParsedMetrics>;
}> {
  const { registry } = createMetrics({ service: "ops-test", defaultMetrics: false });
  const server: MetricsServer = await startMetricsServer({ registry, port: 0 });
  cleanups.push(() => server.close());
  return {
    registry,
    async scrape() {
      const response = await fetch(server.url);
      expect(response.status).toBe(200);
      return parsePrometheusText(await response.text());
    },
  };
}

function natsUrl(): string {
  const url = process.env.NATS_URL;
  if (!url) throw new Error("NATS_URL is not set: run tests through vitest (its global setup sets it)");
  return url;
}

describe("outbox metrics", () => {
  it("show the backlog growing and ageing while NATS is down, and draining once it is back", async () => {
    const testDb = await createTestDatabase({ migrationsFolder });
    cleanups.push(() => testDb.close());
    const nats: PrivateNats = await privateNats(await freePort());
    cleanups.push(() => nats.close());
    await nats.start();
    const bus = await connectNatsBus({ servers: nats.url, name: "outbox-metrics-test", onError: () => {} });
    cleanups.push(() => bus.close());
    await bus.ensureStream({ name: "OPS", subjects: ["ops.>"] });
    const sealer = new PayloadSealer(OUTBOX_PAYLOAD, "test key", randomBytes(32));
    const relay = new OutboxRelay({
      database: testDb,
      bus,
      sealer,
      pollIntervalMs: 100,
      maxRetryDelayMs: 200,
    });
    cleanups.push(() => relay.stop());
    relay.start();
    const { registry, scrape } = await served();
    registerOutboxMetrics(registry, testDb.db);
    const write = (n: number) =>
      transaction(testDb.db, (tx) =>
        writeOutbox(
          tx,
          Array.from({ length: n }, (_, i) => ({ subject: "ops.fanout", payload: new Uint8Array([i]) })),
          sealer,
        ),
      );

    expect(sampleValue(await scrape(), "outbox_backlog_messages")).toBe(0);
    expect(sampleValue(await scrape(), "outbox_oldest_message_age_seconds")).toBe(0);

    await nats.stop();
    await write(3);
    relay.poke();
    await write(2);
    relay.poke();
    // The relay cannot publish: every row stays, and the oldest is older than the newest write.
    const during = await scrape();
    expect(sampleValue(during, "outbox_backlog_messages")).toBe(5);
    expect(sampleValue(during, "outbox_oldest_message_age_seconds")).toBeGreaterThan(0);

    await nats.start();
    const after = await eventually(
      async () => {
        const parsed = await scrape();
        return sampleValue(parsed, "outbox_backlog_messages") === 0 ? parsed : undefined;
      },
      { timeoutMs: 30_000, message: "the outbox to drain once NATS is back" },
    );
    expect(sampleValue(after, "outbox_oldest_message_age_seconds")).toBe(0);
  });

  it("read NaN and count the failure when the database is gone, and /metrics still answers", async () => {
    const testDb = await createTestDatabase({ migrationsFolder });
    const { registry, scrape } = await served();
    registerOutboxMetrics(registry, testDb.db);
    registerReadinessMetric(registry, { ready: true });
    expect(sampleValue(await scrape(), "outbox_backlog_messages")).toBe(0);
    await testDb.close();
    const parsed = await eventually(
      async () => {
        const p = await scrape();
        return sampleValue(p, "metrics_collect_failures_total", { collector: "outbox" }) ? p : undefined;
      },
      { message: "a failed outbox read" },
    );
    // Unknown, not 0: an alert on the backlog neither fires nor clears on a value nobody read.
    expect(sampleValue(parsed, "outbox_backlog_messages")).toBeNaN();
    expect(sampleValue(parsed, "service_ready")).toBe(1);
  });
});

describe("database pool metrics", () => {
  it("count connections in use and callers waiting while every connection is held", async () => {
    const testDb = await createTestDatabase();
    cleanups.push(() => testDb.close());
    const database = await openDatabase({ driver: "pg", url: testDb.url ?? "", poolMax: 2 });
    cleanups.push(() => database.close());
    const { registry, scrape } = await served();
    registerPoolMetrics(registry, () => database.poolStats?.());

    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const holders = [0, 1].map(() =>
      database.db.transaction(async (tx) => {
        await tx.execute(sql`select 1`);
        await held;
      }),
    );
    await eventually(() => database.poolStats?.().idle === 0 && database.poolStats?.().total === 2);
    // Drizzle runs a query once it is awaited: `then` sends it to the pool, which has no connection free.
    const waiting = database.db.execute(sql`select 1`).then(() => undefined);
    const busy = await eventually(async () => {
      const parsed = await scrape();
      return sampleValue(parsed, "db_pool_waiting_clients") === 1 ? parsed : undefined;
    });
    expect(sampleValue(busy, "db_pool_connections")).toBe(2);
    expect(sampleValue(busy, "db_pool_idle_connections")).toBe(0);
    expect(sampleValue(busy, "db_pool_max_connections")).toBe(2);

    release();
    await Promise.all([...holders, waiting]);
    const calm = await scrape();
    expect(sampleValue(calm, "db_pool_waiting_clients")).toBe(0);
    expect(sampleValue(calm, "db_pool_idle_connections")).toBe(2);
  });
});

interface LagCase {
  name: string;
  bus(): Promise<Bus>;
}

const lagCases: LagCase[] = [
  {
    name: "NATS JetStream",
    bus: () => connectNatsBus({ servers: natsUrl(), name: "lag-metrics-test" }),
  },
  {
    name: "embedded bus",
    async bus() {
      const testDb: TestDatabase = await createTestPglite();
      cleanups.push(() => testDb.close());
      return createEmbeddedBus({ db: testDb.db, pollIntervalMs: 50 });
    },
  },
];

describe.each(lagCases)("bus consumer lag ($name)", (lagCase) => {
  it("rises while the consumer is stopped, shows the message held by a handler, and falls once it is handled", async () => {
    const suffix = randomBytes(4).toString("hex");
    const stream = `LAG_${suffix}`;
    const durable = `lag_${suffix}`;
    const bus = await lagCase.bus();
    cleanups.push(() => bus.close());
    if (lagCase.name.startsWith("NATS")) {
      cleanups.push(async () => {
        const nc = await connect({ servers: natsUrl() });
        await (await jetstreamManager(nc)).streams.delete(stream).catch(() => false);
        await nc.close();
      });
    }
    const { registry, scrape } = await served();
    registerBusMetrics(registry, bus);
    await bus.ensureStream({
      name: stream,
      subjects: [`lag${suffix}.>`],
      retention: "interest",
      durables: [{ name: durable }],
    });
    const labels = { stream, consumer: durable };
    const lagOf = async () => {
      const parsed = await scrape();
      return {
        pending: sampleValue(parsed, "bus_consumer_pending_messages", labels),
        ackPending: sampleValue(parsed, "bus_consumer_ack_pending_messages", labels),
        age: sampleValue(parsed, "bus_consumer_oldest_unacked_age_seconds", labels),
      };
    };
    // Declared, never consumed yet: nothing waits.
    expect(await lagOf()).toEqual({ pending: 0, ackPending: 0, age: 0 });

    for (let i = 0; i < 3; i++) {
      await bus.publish(`lag${suffix}.x`, new Uint8Array([i]), { id: `m${i}` });
    }
    const stopped = await eventually(async () => {
      const lag = await lagOf();
      return lag.pending === 3 ? lag : undefined;
    });
    expect(stopped.ackPending).toBe(0);
    expect(stopped.age).toBeGreaterThan(0);

    // A handler that holds the first message: one handed out and unacked, two still pending.
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const handled: BusMessage[] = [];
    const subscription = await bus.consume({ stream, durable, maxInFlight: 1 }, async (msg) => {
      if (handled.length === 0) await held;
      handled.push(msg);
    });
    cleanups.push(() => subscription.stop());
    const holding = await eventually(async () => {
      const lag = await lagOf();
      return lag.ackPending === 1 ? lag : undefined;
    });
    expect(holding.pending).toBe(2);
    expect(holding.age).toBeGreaterThan(0);

    release();
    await eventually(async () => {
      const lag = await lagOf();
      return lag.pending === 0 && lag.ackPending === 0 && lag.age === 0;
    });
    expect(handled.map((m) => m.id)).toEqual(["m0", "m1", "m2"]);
  });
});

describe("readiness metric", () => {
  it("follows the process's readiness", async () => {
    const { registry, scrape } = await served();
    const readiness = new Readiness();
    registerReadinessMetric(registry, readiness);
    expect(sampleValue(await scrape(), "service_ready")).toBe(0);
    readiness.markStarted();
    expect(sampleValue(await scrape(), "service_ready")).toBe(1);
    const database = readiness.dependency("database");
    database.down("connection refused");
    expect(sampleValue(await scrape(), "service_ready")).toBe(0);
  });
});
