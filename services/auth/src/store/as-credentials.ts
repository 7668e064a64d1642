import type { Database } from "@phoenix/runtime/db";
import { and, desc, eq, gt, inArray, isNotNull, lt } from "drizzle-orm";
import { monthOf } from "../domain/coarse-time.js";
import type { StoredSigningKey } from "../domain/key-encryption.js";
import { asCredentials, revokedCredentials } from "./schema.js";

export type AsCredentialRow = typeof asCredentials.$inferSelect;

/** AS credentials of `kind` that are not expired at `now`, newest first. */
export async function listValidAsCredentials(
  db: Database,
  kind: "root" | "intermediate",
  now: Date,
): Promise<AsCredentialRow[]> {
  return db
    .select()
    .from(asCredentials)
    .where(and(eq(asCredentials.kind, kind), gt(asCredentials.notAfter, now)))
    .orderBy(desc(asCredentials.createdAt));
}

/**
 * Deletes AS intermediates that expired before `now`; returns how many. Every client credential
 * one signed has expired too: an intermediate signs only while its remaining life covers
 * AS_CLIENT_CREDENTIAL_MAX_LIFETIME (`isFreshSigner`). Roots stay (a few per decade).
 */
export async function deleteExpiredIntermediates(db: Database, now: Date): Promise<number> {
  const rows = await db
    .delete(asCredentials)
    .where(and(eq(asCredentials.kind, "intermediate"), lt(asCredentials.notAfter, now)))
    .returning({ fingerprint: asCredentials.fingerprint });
  return rows.length;
}

/** Stores a credential the AS created or was configured with; a second insert is a no-op. */
export async function insertAsCredential(db: Database, row: AsCredentialRow): Promise<void> {
  await db.insert(asCredentials).values(row).onConflictDoNothing();
}

/** Every revoked fingerprint. */
export async function listRevokedFingerprints(db: Database): Promise<Uint8Array[]> {
  const rows = await db.select({ fingerprint: revokedCredentials.fingerprint }).from(revokedCredentials);
  return rows.map((r) => r.fingerprint);
}

/** Puts a fingerprint on the revocation list (revocation month kept); true when it was not there yet. */
export async function revokeFingerprint(
  db: Database,
  fingerprint: Uint8Array,
  now: number,
): Promise<boolean> {
  const rows = await db
    .insert(revokedCredentials)
    .values({ fingerprint, revokedAt: monthOf(now) })
    .onConflictDoNothing()
    .returning({ fingerprint: revokedCredentials.fingerprint });
  return rows.length > 0;
}

/**
 * Deletes the revocations made before `before` (a UTC month start), returning how many: once every
 * credential revoked then has expired, its entry protects nothing (an expired credential is
 * refused anyway) and would only grow the list every client downloads.
 */
export async function deleteRevocationsBefore(db: Database, before: Date): Promise<number> {
  const rows = await db
    .delete(revokedCredentials)
    .where(lt(revokedCredentials.revokedAt, before))
    .returning({ fingerprint: revokedCredentials.fingerprint });
  return rows.length;
}

/** One AS credential by fingerprint (valid or not). */
export async function findAsCredential(
  db: Database,
  fingerprint: Uint8Array,
): Promise<AsCredentialRow | undefined> {
  const rows = await db
    .select()
    .from(asCredentials)
    .where(eq(asCredentials.fingerprint, fingerprint))
    .limit(1);
  return rows[0];
}

/** Which of `fingerprints` are on the revocation list. */
export async function revokedAmong(db: Database, fingerprints: Uint8Array[]): Promise<Uint8Array[]> {
  const rows = await db
    .select({ fingerprint: revokedCredentials.fingerprint })
    .from(revokedCredentials)
    .where(inArray(revokedCredentials.fingerprint, fingerprints));
  return rows.map((r) => r.fingerprint);
}

/** Every stored signing key (valid or not), with its credential's fingerprint. */
export async function listStoredSigningKeys(
  db: Database,
): Promise<(StoredSigningKey & { fingerprint: Uint8Array })[]> {
  const rows = await db
    .select({
      fingerprint: asCredentials.fingerprint,
      signingKey: asCredentials.signingKey,
      signingKeyKekId: asCredentials.signingKeyKekId,
    })
    .from(asCredentials)
    .where(isNotNull(asCredentials.signingKey));
  return rows.flatMap((r) => (r.signingKey ? [{ ...r, signingKey: r.signingKey }] : []));
}

/** Replaces a stored signing key (resealing under another key-encryption key). */
export async function updateStoredSigningKey(
  db: Database,
  fingerprint: Uint8Array,
  stored: StoredSigningKey,
): Promise<void> {
  await db.update(asCredentials).set(stored).where(eq(asCredentials.fingerprint, fingerprint));
}
