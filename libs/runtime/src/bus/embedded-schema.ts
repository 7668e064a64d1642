import { sql } from "drizzle-orm";
import { bigint, boolean, integer, jsonb, pgSchema, primaryKey, text, timestamp } from "drizzle-orm/pg-core";
import { bytea } from "../db/columns.js";
import type { Database } from "../db/types.js";
import type { StreamRetention } from "./types.js";

/**
 * Storage of the embedded bus. It lives in its own Postgres schema and is created by the bus
 * itself (`ensureEmbeddedBusSchema`), so it works on any database handed to it — PGlite in the
 * all-in-one homeserver, or Postgres — without touching a service's migrations.
 */
export const busSchema = pgSchema("phoenix_bus");

export const streams = busSchema.table("streams", {
  name: text("name").primaryKey(),
  subjects: jsonb("subjects").$type<string[]>().notNull(),
  duplicateWindowMs: bigint("duplicate_window_ms", { mode: "number" }).notNull(),
  /** `workqueue`, `interest` or `limits` (`StreamRetention`): what an ack deletes. */
  retention: text("retention").$type<StreamRetention>().notNull().default("limits"),
  /** Backstop limits; 0: none. */
  maxAgeMs: bigint("max_age_ms", { mode: "number" }).notNull(),
  maxBytes: bigint("max_bytes", { mode: "number" }).notNull().default(0),
  maxMsgs: bigint("max_msgs", { mode: "number" }).notNull().default(0),
  /** Last sequence handed out; publishes take the row lock, so sequences commit in order. */
  lastSeq: bigint("last_seq", { mode: "number" }).notNull().default(0),
});

/**
 * Stream contents: a message stays until its stream's retention lets it go (the ack of its one
 * durable on `workqueue`, of every matching durable on `interest`) or `max_age_ms` passes.
 */
export const messages = busSchema.table(
  "messages",
  {
    stream: text("stream").notNull(),
    seq: bigint("seq", { mode: "number" }).notNull(),
    subject: text("subject").notNull(),
    /** The publisher's dedupe id. */
    msgId: text("msg_id").notNull(),
    data: bytea("data").notNull(),
    /** Empty when `sealed` (the headers are inside the sealed `data`). */
    headers: jsonb("headers").$type<Record<string, string>>().notNull(),
    /** `data` holds body and headers sealed by the bus's sealer (see `sealMessage`). */
    sealed: boolean("sealed").notNull().default(false),
    publishedAt: timestamp("published_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.stream, t.seq] })],
);

/** One row per durable consumer: its filter and how far into the stream it has handed out. */
export const consumers = busSchema.table(
  "consumers",
  {
    stream: text("stream").notNull(),
    durable: text("durable").notNull(),
    filterSubject: text("filter_subject"),
    /** Every message up to here was delivered at least once (or did not match the filter). */
    deliveredSeq: bigint("delivered_seq", { mode: "number" }).notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.stream, t.durable] })],
);

/**
 * Messages of a durable that were delivered and not yet acked. An ack deletes the row; a message
 * at or below `delivered_seq` without a row is acked. A row whose lease passed is redelivered.
 */
export const pending = busSchema.table(
  "pending",
  {
    stream: text("stream").notNull(),
    durable: text("durable").notNull(),
    seq: bigint("seq", { mode: "number" }).notNull(),
    deliveryCount: integer("delivery_count").notNull(),
    /** Not handed out again before this time (ack wait, or the retry delay after a failure). */
    leaseUntil: timestamp("lease_until", { withTimezone: true }).notNull(),
    /** `max_deliver` reached: kept for inspection, never delivered again. */
    gaveUp: boolean("gave_up").notNull().default(false),
  },
  (t) => [primaryKey({ columns: [t.stream, t.durable, t.seq] })],
);

/** Advisory lock key serialising schema creation of bus instances starting at once ("phnxbus0"). */
const SCHEMA_LOCK_KEY = 0x70686e7862757330n;

const DDL = [
  sql`CREATE SCHEMA IF NOT EXISTS phoenix_bus`,
  sql`CREATE TABLE IF NOT EXISTS phoenix_bus.streams (
    name text PRIMARY KEY,
    subjects jsonb NOT NULL,
    duplicate_window_ms bigint NOT NULL,
    max_age_ms bigint NOT NULL,
    last_seq bigint NOT NULL DEFAULT 0
  )`,
  sql`CREATE TABLE IF NOT EXISTS phoenix_bus.messages (
    stream text NOT NULL,
    seq bigint NOT NULL,
    subject text NOT NULL,
    msg_id text NOT NULL,
    data bytea NOT NULL,
    headers jsonb NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, seq)
  )`,
  // Tables created by earlier versions (no migrations here: the bus creates its own schema).
  sql`ALTER TABLE phoenix_bus.streams ADD COLUMN IF NOT EXISTS retention text NOT NULL DEFAULT 'limits'`,
  sql`ALTER TABLE phoenix_bus.streams ADD COLUMN IF NOT EXISTS max_bytes bigint NOT NULL DEFAULT 0`,
  sql`ALTER TABLE phoenix_bus.streams ADD COLUMN IF NOT EXISTS max_msgs bigint NOT NULL DEFAULT 0`,
  sql`ALTER TABLE phoenix_bus.messages ADD COLUMN IF NOT EXISTS sealed boolean NOT NULL DEFAULT false`,
  sql`CREATE INDEX IF NOT EXISTS messages_msg_id ON phoenix_bus.messages (stream, msg_id)`,
  sql`CREATE INDEX IF NOT EXISTS messages_published_at ON phoenix_bus.messages (stream, published_at)`,
  sql`CREATE TABLE IF NOT EXISTS phoenix_bus.consumers (
    stream text NOT NULL,
    durable text NOT NULL,
    filter_subject text,
    delivered_seq bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (stream, durable)
  )`,
  sql`CREATE TABLE IF NOT EXISTS phoenix_bus.pending (
    stream text NOT NULL,
    durable text NOT NULL,
    seq bigint NOT NULL,
    delivery_count integer NOT NULL,
    lease_until timestamptz NOT NULL,
    gave_up boolean NOT NULL DEFAULT false,
    PRIMARY KEY (stream, durable, seq)
  )`,
  sql`CREATE INDEX IF NOT EXISTS pending_due ON phoenix_bus.pending (stream, durable, lease_until) WHERE NOT gave_up`,
];

/**
 * Creates the bus tables when missing. Idempotent and safe when several instances (or
 * processes, on Postgres) start at once: they take turns under an advisory lock.
 */
export async function ensureEmbeddedBusSchema(db: Database): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.execute(sql`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK_KEY.toString()}::bigint)`);
    for (const statement of DDL) await tx.execute(statement);
  });
}
