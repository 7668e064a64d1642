import type { Database } from "@phoenix/runtime/db";
import { and, desc, eq, inArray, lte } from "drizzle-orm";
import { MAX_PREVIOUS_AUTH_KEYS } from "../domain/limits.js";
import { qsPreviousAuthKeys } from "./schema.js";

/**
 * Keeps a replaced client record auth key for verifying queue configs sealed before the change
 * until `validUntil`; drops the client's expired ones and all but the newest
 * {@link MAX_PREVIOUS_AUTH_KEYS}.
 */
export async function keepPreviousAuthKey(
  db: Database,
  clientId: Uint8Array,
  authKey: Uint8Array,
  validUntil: Date,
  now: Date,
): Promise<void> {
  await db
    .insert(qsPreviousAuthKeys)
    .values({ clientId, authKey, validUntil })
    .onConflictDoUpdate({
      target: [qsPreviousAuthKeys.clientId, qsPreviousAuthKeys.authKey],
      set: { validUntil },
    });
  const kept = await db
    .select({ authKey: qsPreviousAuthKeys.authKey, validUntil: qsPreviousAuthKeys.validUntil })
    .from(qsPreviousAuthKeys)
    .where(eq(qsPreviousAuthKeys.clientId, clientId))
    .orderBy(desc(qsPreviousAuthKeys.validUntil));
  const drop = kept
    .filter((k, i) => i >= MAX_PREVIOUS_AUTH_KEYS || k.validUntil.getTime() <= now.getTime())
    .map((k) => k.authKey);
  if (drop.length > 0) {
    await db
      .delete(qsPreviousAuthKeys)
      .where(and(eq(qsPreviousAuthKeys.clientId, clientId), inArray(qsPreviousAuthKeys.authKey, drop)));
  }
}

/** Deletes replaced auth keys past their grace period. */
export async function deleteExpiredAuthKeys(db: Database, now: Date): Promise<void> {
  await db.delete(qsPreviousAuthKeys).where(lte(qsPreviousAuthKeys.validUntil, now));
}
