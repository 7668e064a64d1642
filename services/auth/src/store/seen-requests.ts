import type { Database } from "@phoenix/runtime/db";
import { lte } from "drizzle-orm";
import { seenRequests } from "./schema.js";

/**
 * Records a request key until `expiresAt`; false when it was already recorded (a replay). Run in
 * the request's transaction: a request that fails leaves no trace, one that succeeds can never
 * succeed again.
 */
export async function recordRequest(db: Database, key: Uint8Array, expiresAt: Date): Promise<boolean> {
  const rows = await db
    .insert(seenRequests)
    .values({ key, expiresAt })
    .onConflictDoNothing()
    .returning({ key: seenRequests.key });
  return rows.length > 0;
}

/** Forgets request keys whose replay window has passed. */
export async function deleteExpiredRequests(db: Database, now: Date): Promise<number> {
  const rows = await db
    .delete(seenRequests)
    .where(lte(seenRequests.expiresAt, now))
    .returning({ key: seenRequests.key });
  return rows.length;
}
