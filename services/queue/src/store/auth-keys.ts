import { toHex } from "@phoenix/crypto";
import type { Database } from "@phoenix/runtime/db";
import { and, desc, eq, gt, inArray, lte } from "drizzle-orm";
import { MAX_PREVIOUS_AUTH_KEYS } from "../domain/limits.js";
import { qsClients, qsPreviousAuthKeys } from "./schema.js";

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

/**
 * The keys that verify queue configs sealed by each of `clientIds` at `now`: the current auth
 * key first, then replaced ones still in their grace period. Unknown clients are absent.
 */
export async function sealingKeysOf(
  db: Database,
  clientIds: readonly Uint8Array[],
  now: Date,
): Promise<Map<string, Uint8Array[]>> {
  const out = new Map<string, Uint8Array[]>();
  if (clientIds.length === 0) return out;
  const current = await db
    .select({ clientId: qsClients.clientId, authKey: qsClients.authKey })
    .from(qsClients)
    .where(inArray(qsClients.clientId, [...clientIds]));
  for (const row of current) out.set(toHex(row.clientId), [row.authKey]);
  if (out.size === 0) return out;
  const previous = await db
    .select({ clientId: qsPreviousAuthKeys.clientId, authKey: qsPreviousAuthKeys.authKey })
    .from(qsPreviousAuthKeys)
    .where(and(inArray(qsPreviousAuthKeys.clientId, [...clientIds]), gt(qsPreviousAuthKeys.validUntil, now)))
    .orderBy(desc(qsPreviousAuthKeys.validUntil));
  for (const row of previous) out.get(toHex(row.clientId))?.push(row.authKey);
  return out;
}

/** Deletes replaced auth keys past their grace period. */
export async function deleteExpiredAuthKeys(db: Database, now: Date): Promise<void> {
  await db.delete(qsPreviousAuthKeys).where(lte(qsPreviousAuthKeys.validUntil, now));
}
