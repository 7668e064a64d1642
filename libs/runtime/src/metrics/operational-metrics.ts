import { asc, count, sql } from "drizzle-orm";
import { Gauge, type Registry } from "prom-client";
import type { Bus, ConsumerLag } from "../bus/types.js";
import type { PoolStats } from "../db/open-database.js";
import type { Database } from "../db/types.js";
import type { Readiness } from "../health/readiness.js";
import { outbox } from "../outbox/schema.js";
import { ScrapeSource } from "./scrape-collector.js";

/*
 * Gauges that show trouble before users notice it, read on scrape. Their labels never carry a
 * user, group or queue id: a stream or durable name, a peer's domain, a dependency name at most.
 * docs/monitoring.md describes each and what to do about it.
 */

/**
 * `db_pool_connections`, `db_pool_idle_connections`, `db_pool_waiting_clients` and
 * `db_pool_max_connections` of a pg pool (callers waiting means every connection is busy).
 */
export function registerPoolMetrics(registry: Registry, stats: () => PoolStats | undefined): void {
  // One pool per service process; a second registration (an embedder's shared registry) keeps the first.
  if (registry.getSingleMetric("db_pool_connections")) return;
  const registers = [registry];
  const gauge = (name: string, help: string, pick: (s: PoolStats) => number): void => {
    new Gauge({
      name,
      help,
      registers,
      collect() {
        const now = stats();
        this.set(now ? pick(now) : Number.NaN);
      },
    });
  };
  gauge("db_pool_connections", "Database connections open in the pool (idle or in use)", (s) => s.total);
  gauge("db_pool_idle_connections", "Database connections open and idle in the pool", (s) => s.idle);
  gauge(
    "db_pool_waiting_clients",
    "Queries waiting for a database connection because every pooled connection is in use",
    (s) => s.waiting,
  );
  gauge("db_pool_max_connections", "The database pool's size limit", (s) => s.max);
}

/**
 * `bus_consumer_pending_messages`, `bus_consumer_ack_pending_messages` and
 * `bus_consumer_oldest_unacked_age_seconds` by `stream` and `consumer` (the durable), for every
 * durable `bus` declared or consumed (`Bus.consumerLag`); nothing on a bus without it.
 */
export function registerBusMetrics(registry: Registry, bus: Pick<Bus, "consumerLag">): void {
  const source = busLagSource(registry, bus);
  // A second bus on one registry (an embedder's) keeps the first's series.
  if (source === undefined || registry.getSingleMetric("bus_consumer_pending_messages")) return;
  const labelNames = ["stream", "consumer"] as const;
  const gauge = (name: string, help: string, pick: (lag: ConsumerLag, now: number) => number | undefined) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        const lags = await source.get();
        this.reset();
        const now = Date.now();
        for (const lag of lags ?? []) {
          const value = pick(lag, now);
          if (value !== undefined) this.set({ stream: lag.stream, consumer: lag.durable }, value);
        }
      },
    });
  gauge(
    "bus_consumer_pending_messages",
    "Messages of a durable consumer's subjects not handed out yet (JetStream num_pending)",
    (lag) => lag.pending,
  );
  gauge(
    "bus_consumer_ack_pending_messages",
    "Messages handed out to a durable consumer and not acked yet (JetStream num_ack_pending)",
    (lag) => lag.ackPending,
  );
  gauge(
    "bus_consumer_oldest_unacked_age_seconds",
    "Age of a durable consumer's oldest message not acked yet (0: nothing waiting)",
    (lag, now) => (lag.oldestUnackedAt === undefined ? 0 : Math.max(0, now - lag.oldestUnackedAt) / 1000),
  );
}

const lagSources = new WeakMap<Registry, ScrapeSource<ConsumerLag[]>>();

/**
 * The registry's scrape source of `bus.consumerLag()` (the first bus given for a registry), for
 * gauges of a service built on the lag (the federation gateway's per-peer queues): one read per
 * scrape serves them and the `bus_consumer_*` gauges. Undefined for a bus without `consumerLag`.
 */
export function busLagSource(
  registry: Registry,
  bus: Pick<Bus, "consumerLag">,
): ScrapeSource<ConsumerLag[]> | undefined {
  const existing = lagSources.get(registry);
  if (existing) return existing;
  const consumerLag = bus.consumerLag?.bind(bus);
  if (consumerLag === undefined) return undefined;
  const source = new ScrapeSource<ConsumerLag[]>(registry, { name: "bus_lag", read: consumerLag });
  lagSources.set(registry, source);
  return source;
}

/** Rows counted by `outbox_backlog_messages` at most: the count stays cheap however large the backlog. */
export const OUTBOX_COUNT_LIMIT = 100_000;

/** What {@link readOutbox} found. */
export interface OutboxState {
  /** Rows waiting, at most {@link OUTBOX_COUNT_LIMIT}. */
  rows: number;
  /** Seconds since the oldest waiting row was written (database clock); 0 when empty. */
  oldestAgeSeconds: number;
}

/**
 * Reads the transactional outbox's backlog: a count bounded by {@link OUTBOX_COUNT_LIMIT} and the
 * age of the first row in commit order (found through the primary key, not a scan).
 */
export async function readOutbox(db: Database): Promise<OutboxState> {
  const capped = db.select({ one: sql`1` }).from(outbox).limit(OUTBOX_COUNT_LIMIT).as("capped");
  const [counted] = await db.select({ rows: count() }).from(capped);
  const [first] = await db
    .select({ age: sql<number>`extract(epoch from (now() - ${outbox.createdAt}))::float8` })
    .from(outbox)
    .orderBy(asc(outbox.seq))
    .limit(1);
  return { rows: counted?.rows ?? 0, oldestAgeSeconds: Math.max(0, Number(first?.age ?? 0)) };
}

/**
 * `outbox_backlog_messages` and `outbox_oldest_message_age_seconds` of the service's outbox
 * (rows committed and not yet published to the bus): a backlog that grows or ages means the
 * relay cannot publish (bus down, stream full) or is not running.
 */
export function registerOutboxMetrics(registry: Registry, db: Database): void {
  // One outbox per service database; an embedder's shared registry keeps the first's.
  if (registry.getSingleMetric("outbox_backlog_messages")) return;
  const source = new ScrapeSource<OutboxState>(registry, { name: "outbox", read: () => readOutbox(db) });
  const gauge = (name: string, help: string, pick: (state: OutboxState) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        const state = await source.get();
        // NaN, not 0, when the read failed: an alert must neither fire nor clear on it.
        this.set(state ? pick(state) : Number.NaN);
      },
    });
  gauge(
    "outbox_backlog_messages",
    `Outbox rows committed and not yet published to the bus (counted up to ${OUTBOX_COUNT_LIMIT})`,
    (s) => s.rows,
  );
  gauge(
    "outbox_oldest_message_age_seconds",
    "Age of the oldest outbox row not yet published (0: empty)",
    (s) => s.oldestAgeSeconds,
  );
}

/**
 * `service_ready`: 1 while the process is ready (started, its database and bus up, not shutting
 * down), else 0 — what `/readyz` answers, without running its per-request checks. Registered once
 * per registry (an embedder's registry keeps its own).
 */
export function registerReadinessMetric(registry: Registry, readiness: Pick<Readiness, "ready">): void {
  const name = "service_ready";
  if (registry.getSingleMetric(name)) return;
  new Gauge({
    name,
    help: "1 while the process is ready to serve (started, dependencies up, not shutting down), else 0",
    registers: [registry],
    collect() {
      this.set(readiness.ready ? 1 : 0);
    },
  });
}
