import type { Database } from "@phoenix/runtime/db";
import { and, asc, eq, sql } from "drizzle-orm";
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
  packages: readonly { lastResort: boolean; encryptedAddPackage: Uint8Array }[],
): Promise<void> {
  await db.delete(qsAddPackages).where(eq(qsAddPackages.clientId, clientId));
  await db.insert(qsAddPackages).values(packages.map((p) => ({ clientId, ...p })));
}

/**
 * One encrypted AddPackage of a client: an ordinary one, deleted as it is taken, or when none is
 * left the oldest last-resort one, which stays. Undefined when the client has none.
 */
export async function takeAddPackage(db: Database, clientId: Uint8Array): Promise<Uint8Array | undefined> {
  // SKIP LOCKED: two concurrent fetches never hand out the same ordinary package.
  const [ordinary] = await db
    .delete(qsAddPackages)
    .where(
      eq(
        qsAddPackages.id,
        sql`(select ${qsAddPackages.id} from ${qsAddPackages} where ${qsAddPackages.clientId} = ${clientId}
                 and not ${qsAddPackages.lastResort} order by ${qsAddPackages.id} limit 1 for update skip locked)`,
      ),
    )
    .returning({ encrypted: qsAddPackages.encryptedAddPackage });
  if (ordinary !== undefined) return ordinary.encrypted;
  const [lastResort] = await db
    .select({ encrypted: qsAddPackages.encryptedAddPackage })
    .from(qsAddPackages)
    .where(and(eq(qsAddPackages.clientId, clientId), eq(qsAddPackages.lastResort, true)))
    .orderBy(asc(qsAddPackages.id))
    .limit(1);
  return lastResort?.encrypted;
}
