import type { Database } from "@phoenix/runtime/db";
import { and, asc, eq, gt, isNull, lte, sql } from "drizzle-orm";
import { qsAddPackages } from "./schema.js";

/** Number of AddPackages of a client. */
export async function addPackageCount(db: Database, clientId: Uint8Array): Promise<number> {
  const [row] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(qsAddPackages)
    .where(eq(qsAddPackages.clientId, clientId));
  return row?.n ?? 0;
}

/** Replaces every AddPackage of a client with `packages` (encrypted at rest). */
export async function replaceAddPackages(
  db: Database,
  clientId: Uint8Array,
  packages: readonly { lastResort: boolean; encryptedAddPackage: Uint8Array; expiresAt: Date }[],
): Promise<void> {
  await db.delete(qsAddPackages).where(eq(qsAddPackages.clientId, clientId));
  await db.insert(qsAddPackages).values(packages.map((p) => ({ clientId, ...p })));
}

/**
 * One encrypted AddPackage of a client that is unexpired at `now`: an ordinary one, deleted as it
 * is taken, or when none is left the oldest last-resort one, which stays. Undefined when the
 * client has none (then it is left out of the answer until it publishes again).
 */
export async function takeAddPackage(
  db: Database,
  clientId: Uint8Array,
  now: Date,
): Promise<Uint8Array | undefined> {
  // SKIP LOCKED: two concurrent fetches never hand out the same ordinary package. Expired
  // ones are skipped here and deleted by the sweep.
  const [ordinary] = await db
    .delete(qsAddPackages)
    .where(
      eq(
        qsAddPackages.id,
        sql`(select ${qsAddPackages.id} from ${qsAddPackages} where ${qsAddPackages.clientId} = ${clientId}
                 and not ${qsAddPackages.lastResort} and ${qsAddPackages.expiresAt} > ${now}
                 order by ${qsAddPackages.id} limit 1 for update skip locked)`,
      ),
    )
    .returning({ encrypted: qsAddPackages.encryptedAddPackage });
  if (ordinary !== undefined) return ordinary.encrypted;
  const [lastResort] = await db
    .select({ encrypted: qsAddPackages.encryptedAddPackage })
    .from(qsAddPackages)
    .where(
      and(
        eq(qsAddPackages.clientId, clientId),
        eq(qsAddPackages.lastResort, true),
        gt(qsAddPackages.expiresAt, now),
      ),
    )
    .orderBy(asc(qsAddPackages.id))
    .limit(1);
  return lastResort?.encrypted;
}

/** Deletes AddPackages expired at `now`, last-resort ones included; returns how many. */
export async function deleteExpiredAddPackages(db: Database, now: Date): Promise<number> {
  const rows = await db
    .delete(qsAddPackages)
    .where(lte(qsAddPackages.expiresAt, now))
    .returning({ id: qsAddPackages.id });
  return rows.length;
}

/** Up to `limit` AddPackages stored before they had an expiry (see `fillAddPackageExpiry`). */
export async function addPackagesWithoutExpiry(
  db: Database,
  limit: number,
): Promise<{ id: number; clientId: Uint8Array; encryptedAddPackage: Uint8Array }[]> {
  return db
    .select({
      id: qsAddPackages.id,
      clientId: qsAddPackages.clientId,
      encryptedAddPackage: qsAddPackages.encryptedAddPackage,
    })
    .from(qsAddPackages)
    .where(isNull(qsAddPackages.expiresAt))
    .orderBy(asc(qsAddPackages.id))
    .limit(limit);
}

/** Sets the expiry of one AddPackage that had none. */
export async function setAddPackageExpiry(db: Database, id: number, expiresAt: Date): Promise<void> {
  await db
    .update(qsAddPackages)
    .set({ expiresAt })
    .where(and(eq(qsAddPackages.id, id), isNull(qsAddPackages.expiresAt)));
}
