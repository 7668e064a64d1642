import type { Database } from "@phoenix/runtime/db";
import { and, asc, count, eq, lt, ne } from "drizzle-orm";
import type { ClientKey } from "../domain/ids.js";
import { clients, users } from "./schema.js";

export type ClientRow = typeof clients.$inferSelect;

function byKey(key: ClientKey) {
  return and(eq(clients.userUuid, key.userUuid), eq(clients.clientUuid, key.clientUuid));
}

/** Inserts a client; false when the client id is taken. */
export async function insertClient(db: Database, row: ClientRow): Promise<boolean> {
  const rows = await db
    .insert(clients)
    .values(row)
    .onConflictDoNothing()
    .returning({ userUuid: clients.userUuid });
  return rows.length > 0;
}

/** One client, optionally locking its row. */
export async function findClient(db: Database, key: ClientKey, lock = false): Promise<ClientRow | undefined> {
  const query = db.select().from(clients).where(byKey(key)).limit(1);
  const rows = lock ? await query.for("update") : await query;
  return rows[0];
}

/** The clients of a user, oldest first (by creation month, then client id). */
export async function listClients(db: Database, userUuid: Uint8Array): Promise<ClientRow[]> {
  return db
    .select()
    .from(clients)
    .where(eq(clients.userUuid, userUuid))
    .orderBy(asc(clients.createdAt), asc(clients.clientUuid));
}

/** Number of clients of a user. */
export async function countClients(db: Database, userUuid: Uint8Array): Promise<number> {
  const rows = await db.select({ n: count() }).from(clients).where(eq(clients.userUuid, userUuid));
  return rows[0]?.n ?? 0;
}

/** Deletes a client (its packages and queue go by cascade); false if unknown. */
export async function deleteClient(db: Database, key: ClientKey): Promise<boolean> {
  const rows = await db.delete(clients).where(byKey(key)).returning({ userUuid: clients.userUuid });
  return rows.length > 0;
}

/** Replaces a client's credential (renewal). */
export async function updateClientCredential(
  db: Database,
  key: ClientKey,
  credential: { credential: Uint8Array; signatureKey: Uint8Array; credentialNotAfter: Date },
): Promise<void> {
  await db.update(clients).set(credential).where(byKey(key));
}

/** Records activity at month precision (writes only when the month changed). */
export async function touchClient(db: Database, key: ClientKey, month: Date): Promise<void> {
  await db
    .update(clients)
    .set({ lastActiveAt: month })
    .where(and(byKey(key), ne(clients.lastActiveAt, month)));
}

/**
 * Deletes clients inactive since before `cutoff` (ms), then users left without any client (a user
 * cannot act without a client). Returns the counts.
 */
export async function deleteInactiveClients(
  db: Database,
  cutoff: number,
): Promise<{ clients: number; users: number }> {
  const removed = await db
    .delete(clients)
    .where(lt(clients.lastActiveAt, new Date(cutoff)))
    .returning({ userUuid: clients.userUuid });
  return { clients: removed.length, users: await deleteOrphanedUsers(db, removed) };
}

/**
 * Deletes clients whose credential expired before `now` (ms) — such a client is refused every
 * request, RenewClientCredential included, so it can never act again — then users left without
 * any client. Returns the counts.
 */
export async function deleteExpiredCredentialClients(
  db: Database,
  now: number,
): Promise<{ clients: number; users: number }> {
  const removed = await db
    .delete(clients)
    .where(lt(clients.credentialNotAfter, new Date(now)))
    .returning({ userUuid: clients.userUuid });
  return { clients: removed.length, users: await deleteOrphanedUsers(db, removed) };
}

/** Deletes those of the users of `removed` clients that have no client left; returns how many. */
async function deleteOrphanedUsers(db: Database, removed: { userUuid: Uint8Array }[]): Promise<number> {
  if (removed.length === 0) return 0;
  let orphaned = 0;
  const seen = new Set<string>();
  for (const { userUuid } of removed) {
    const id = Buffer.from(userUuid).toString("hex");
    if (seen.has(id)) continue;
    seen.add(id);
    if ((await countClients(db, userUuid)) === 0) {
      await db.delete(users).where(eq(users.userUuid, userUuid));
      orphaned++;
    }
  }
  return orphaned;
}
