import { sql } from "drizzle-orm";
import { bigint, doublePrecision, index, pgSchema, primaryKey, text } from "drizzle-orm/pg-core";
import { bytea } from "../db/columns.js";
import type { Database } from "../db/types.js";

/**
 * Storage of the shared rate limits ({@link SharedRateLimits}). Like the embedded bus it lives in
 * its own Postgres schema and is created by the runtime itself (`ensureRateLimitSchema`), so any
 * service database — Postgres or PGlite — can hold it without a migration of the service.
 */
export const rateLimitSchema = pgSchema("phoenix_rate_limit");

/**
 * One token bucket per limit and key. `key_hash` is an HMAC of the key (a caller address, a user
 * id), never the key itself; a row is deleted once its bucket has refilled (`full_at_ms`), so a
 * snapshot holds only keys active within the last period of their limit.
 */
export const rateLimitBuckets = rateLimitSchema.table(
  "buckets",
  {
    /** The limit's configuration variable (`AS_CALLER_RATE_PROFILE_PER_MINUTE`). */
    limitName: text("limit_name").notNull(),
    keyHash: bytea("key_hash").notNull(),
    tokens: doublePrecision("tokens").notNull(),
    /** When `tokens` was computed (ms since the epoch). */
    atMs: bigint("at_ms", { mode: "number" }).notNull(),
    /** When the bucket is full again: from then on the row is the same as no row and is swept. */
    fullAtMs: bigint("full_at_ms", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.limitName, t.keyHash] }), index("buckets_full_at").on(t.fullAtMs)],
);

/** The HMAC key of `key_hash` when no secret is configured (one per database, shared by replicas). */
export const rateLimitSettings = rateLimitSchema.table("settings", {
  name: text("name").primaryKey(),
  value: bytea("value").notNull(),
});

/** Advisory lock key serialising schema creation of instances starting at once ("phnxrlim"). */
const SCHEMA_LOCK_KEY = 0x70686e78726c696dn;

const DDL = [
  sql`CREATE SCHEMA IF NOT EXISTS phoenix_rate_limit`,
  sql`CREATE TABLE IF NOT EXISTS phoenix_rate_limit.buckets (
    limit_name text NOT NULL,
    key_hash bytea NOT NULL,
    tokens double precision NOT NULL,
    at_ms bigint NOT NULL,
    full_at_ms bigint NOT NULL,
    PRIMARY KEY (limit_name, key_hash)
  )`,
  sql`CREATE INDEX IF NOT EXISTS buckets_full_at ON phoenix_rate_limit.buckets (full_at_ms)`,
  sql`CREATE TABLE IF NOT EXISTS phoenix_rate_limit.settings (
    name text PRIMARY KEY,
    value bytea NOT NULL
  )`,
];

/**
 * Creates the rate-limit tables when missing. Idempotent and safe when several replicas start at
 * once: they take turns under an advisory lock.
 */
export async function ensureRateLimitSchema(db: Database): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.execute(sql`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK_KEY.toString()}::bigint)`);
    for (const statement of DDL) await tx.execute(statement);
  });
}
