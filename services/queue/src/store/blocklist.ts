import type { Database } from "@phoenix/runtime/db";
import { and, eq, sql } from "drizzle-orm";
import { qsBlocklist } from "./schema.js";

/** Number of blocklist entries of a queue. */
export async function blocklistSize(db: Database, clientId: Uint8Array): Promise<number> {
  const [row] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(qsBlocklist)
    .where(eq(qsBlocklist.clientId, clientId));
  return row?.n ?? 0;
}

/** Adds a (keyed-hash) blocklist entry to a queue; an entry already there is kept. */
export async function addBlocklistEntry(
  db: Database,
  clientId: Uint8Array,
  entry: Uint8Array,
): Promise<void> {
  await db.insert(qsBlocklist).values({ clientId, entry }).onConflictDoNothing();
}

/** Removes a blocklist entry of a queue (nothing happens when it is absent). */
export async function removeBlocklistEntry(
  db: Database,
  clientId: Uint8Array,
  entry: Uint8Array,
): Promise<void> {
  await db.delete(qsBlocklist).where(and(eq(qsBlocklist.clientId, clientId), eq(qsBlocklist.entry, entry)));
}
