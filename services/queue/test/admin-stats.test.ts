// GetQueueStats' counts: queues by depth and by the age of their oldest expiring message, in
// fixed buckets, from the QS tables as they are (rows written here directly).
import { createTestPglite, type TestDatabase } from "@phoenix/runtime/testing";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queueStats } from "../src/admin/queue-admin.js";
import { QUEUE_MIGRATIONS } from "../src/setup.js";

const DAY = 86_400_000;
const EXPIRY = 30 * DAY;
const NOW = new Date("2026-06-15T12:00:00Z");

describe("GetQueueStats' histograms", () => {
  let db: TestDatabase;

  /** A client queue with `depth` messages expiring at `expiries` (null: never). */
  const queue = async (n: number, depth: number, expiries: (Date | null)[]) => {
    const id = new Uint8Array([n]);
    await db.db.execute(sql`INSERT INTO qs_users (user_id, auth_key, friendship_token_hash, encrypted_friendship_token)
      VALUES (${id}, ${id}, ${id}, ${id})`);
    await db.db.execute(sql`INSERT INTO qs_clients (client_id, user_id, auth_key, queue_key, encrypted_ratchet, last_key_update_at, last_active_at, queue_depth)
      VALUES (${id}, ${id}, ${id}, ${id}, ${id}, ${NOW.toISOString()}::timestamptz, ${NOW.toISOString()}::timestamptz, ${depth})`);
    for (const [seq, expiresAt] of expiries.entries()) {
      await db.db.execute(sql`INSERT INTO qs_messages (client_id, seq, message, expires_at)
        VALUES (${id}, ${seq}, ${id}, ${expiresAt === null ? null : expiresAt.toISOString()}::timestamptz)`);
    }
  };
  /** The expiry of a message enqueued `ageMs` before NOW. */
  const enqueuedAgo = (ageMs: number) => new Date(NOW.getTime() - ageMs + EXPIRY);

  beforeAll(async () => {
    db = await createTestPglite({ migrationsFolder: QUEUE_MIGRATIONS });
    await queue(1, 0, []);
    await queue(2, 1, [null]); // only a key update: no age
    await queue(3, 5, [enqueuedAgo(30 * 60_000), enqueuedAgo(10 * 60_000)]); // ≤ 1 h
    await queue(4, 50, [enqueuedAgo(3 * DAY), enqueuedAgo(DAY / 2)]); // oldest 3 days: ≤ 7 d
    await queue(5, 20_000, [enqueuedAgo(40 * DAY)]); // past the expiry (not swept yet): > 30 d
  });
  afterAll(async () => {
    await db?.close();
  });

  it("counts queues and messages, and buckets depths and oldest ages without naming a queue", async () => {
    const stats = await queueStats(db.db, NOW, EXPIRY);
    expect(stats.queues).toBe(5n);
    expect(stats.messages).toBe(20_056n);
    const counts = (buckets: { count: bigint }[]) => buckets.map((b) => Number(b.count));
    // ≤0, ≤1, ≤10, ≤100, ≤1000, ≤10000, more
    expect(counts(stats.depth)).toEqual([1, 1, 1, 1, 0, 0, 1]);
    expect(stats.depth.map((b) => b.upperBound)).toEqual([0n, 1n, 10n, 100n, 1000n, 10000n, 2n ** 64n - 1n]);
    // ≤1h, ≤1d, ≤7d, ≤30d, more
    expect(counts(stats.oldestMessageAgeSeconds)).toEqual([1, 0, 1, 0, 1]);
  });
});
