import { createHmac, randomBytes } from "node:crypto";
import { and, eq, lte, sql } from "drizzle-orm";
import type { Database } from "../db/types.js";
import { ensureRateLimitSchema, rateLimitBuckets, rateLimitSettings } from "./shared-schema.js";
import { takeToken } from "./token-bucket.js";

/** Settings of {@link SharedRateLimits}. */
export interface SharedRateLimitsOptions {
  /**
   * A service secret (at least 16 bytes, kept outside the database) from which the key of the
   * stored key hashes is derived. Absent: a random key kept in the database, shared by replicas.
   */
  secret?: Uint8Array;
  /** A take also deletes refilled buckets when the last sweep is this old (default 60 s). */
  sweepIntervalMs?: number;
}

/** A shared rate-limit store was given a secret too short to key its hashes. */
export class SharedRateLimitsError extends Error {
  override readonly name = "SharedRateLimitsError";
}

const MAC_KEY_SETTING = "key_hash_key";
const MAC_KEY_LABEL = "phoenix rate-limit key hash";

/**
 * Token buckets kept in the service's own database, so a limit holds across all replicas of the
 * service (a per-process limiter multiplies the limit by the replica count). One atomic upsert
 * per take; works on Postgres and PGlite. Keys are stored as HMACs (never the address or user id
 * itself) and a bucket's row is deleted once it has refilled.
 *
 * Why not `rate-limiter-flexible`: its Postgres store needs a node-postgres/knex/sequelize client
 * (PGlite, the embedded homeserver's database, is none of them), stores keys in the clear, and
 * counts fixed windows where the rest of the runtime uses token buckets (`takeToken`).
 */
export class SharedRateLimits {
  private lastSweep = Number.NEGATIVE_INFINITY;

  private constructor(
    private readonly db: Database,
    private readonly macKey: Uint8Array,
    private readonly sweepIntervalMs: number,
  ) {}

  /** Creates the tables when missing (`phoenix_rate_limit` schema) and loads the hash key. */
  static async open(db: Database, options: SharedRateLimitsOptions = {}): Promise<SharedRateLimits> {
    await ensureRateLimitSchema(db);
    let macKey: Uint8Array;
    if (options.secret !== undefined) {
      if (options.secret.length < 16)
        throw new SharedRateLimitsError("the rate-limit secret is shorter than 16 bytes");
      macKey = new Uint8Array(createHmac("sha256", options.secret).update(MAC_KEY_LABEL).digest());
    } else {
      await db
        .insert(rateLimitSettings)
        .values({ name: MAC_KEY_SETTING, value: new Uint8Array(randomBytes(32)) })
        .onConflictDoNothing();
      const rows = await db
        .select({ value: rateLimitSettings.value })
        .from(rateLimitSettings)
        .where(eq(rateLimitSettings.name, MAC_KEY_SETTING));
      macKey = rows[0]?.value ?? new Uint8Array(randomBytes(32));
    }
    return new SharedRateLimits(db, macKey, options.sweepIntervalMs ?? 60_000);
  }

  /** The stored form of `key` under limit `limitName`: HMAC-SHA256, length-prefixed parts. */
  keyHash(limitName: string, key: string | Uint8Array): Uint8Array {
    const mac = createHmac("sha256", this.macKey);
    const name = Buffer.from(limitName, "utf8");
    const length = Buffer.alloc(4);
    length.writeUInt32BE(name.length);
    mac
      .update(length)
      .update(name)
      .update(typeof key === "string" ? Buffer.from(key, "utf8") : key);
    return new Uint8Array(mac.digest());
  }

  /**
   * Takes one token for `key` from the bucket of `limitName` (`capacity` tokens refilled evenly
   * over `periodMs`) at `now` (ms); 0 when taken, else the milliseconds until a token is free.
   * Atomic across replicas: the refill and the take are one upsert under the row's lock.
   */
  async take(
    limitName: string,
    capacity: number,
    periodMs: number,
    key: string | Uint8Array,
    now: number,
  ): Promise<number> {
    if (capacity <= 0) return 0;
    await this.maybeSweep(now);
    const keyHash = this.keyHash(limitName, key);
    const rate = capacity / periodMs;
    const at = Math.floor(now);
    // Tokens of the stored bucket refilled up to `now` (another replica's clock running behind
    // never refills backwards).
    const refilled = sql`LEAST(${capacity}::float8, b.tokens + GREATEST(0, ${at}::bigint - b.at_ms) * ${rate}::float8)`;
    // Two rounds at most: a refusal whose row was swept before it was read is a full bucket.
    for (let round = 0; round < 2; round++) {
      const taken = await this.db.execute(sql`
        INSERT INTO phoenix_rate_limit.buckets AS b (limit_name, key_hash, tokens, at_ms, full_at_ms)
        VALUES (${limitName}, ${keyHash}, ${capacity - 1}::float8, ${at}::bigint, ${at + Math.ceil(1 / rate)}::bigint)
        ON CONFLICT (limit_name, key_hash) DO UPDATE SET
          tokens = ${refilled} - 1,
          at_ms = GREATEST(b.at_ms, ${at}::bigint),
          full_at_ms = GREATEST(b.at_ms, ${at}::bigint)
            + CEIL((${capacity}::float8 - (${refilled} - 1)) / ${rate}::float8)::bigint
        WHERE ${refilled} >= 1
        RETURNING tokens`);
      if (rowsOf(taken).length > 0) return 0;
      const [bucket] = await this.db
        .select({ tokens: rateLimitBuckets.tokens, at: rateLimitBuckets.atMs })
        .from(rateLimitBuckets)
        .where(and(eq(rateLimitBuckets.limitName, limitName), eq(rateLimitBuckets.keyHash, keyHash)));
      if (bucket)
        return takeToken({ tokens: bucket.tokens, at: Math.min(bucket.at, at) }, capacity, periodMs, at)
          .waitMs;
    }
    return 0;
  }

  /** Deletes buckets that have refilled (the same as no row); returns how many. */
  async sweep(now: number): Promise<number> {
    this.lastSweep = now;
    const rows = await this.db
      .delete(rateLimitBuckets)
      .where(lte(rateLimitBuckets.fullAtMs, Math.floor(now)))
      .returning({ limitName: rateLimitBuckets.limitName });
    return rows.length;
  }

  private async maybeSweep(now: number): Promise<void> {
    if (now - this.lastSweep < this.sweepIntervalMs) return;
    // A failed sweep only leaves refilled rows for the next one; it never fails the request.
    await this.sweep(now).catch(() => undefined);
  }
}

function rowsOf(result: unknown): unknown[] {
  // node-postgres returns a QueryResult ({ rows }), PGlite a Results object ({ rows }) too.
  const rows = (result as { rows?: unknown[] }).rows;
  return Array.isArray(rows) ? rows : [];
}
