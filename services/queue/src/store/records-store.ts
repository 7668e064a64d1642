import { toHex } from "@phoenix/crypto";
import { type Database, transaction } from "@phoenix/runtime/db";
import { and, asc, desc, eq, gt, gte, inArray, lt, lte, ne, sql } from "drizzle-orm";
import { MAX_PREVIOUS_AUTH_KEYS } from "../domain/limits.js";
import { qsAddPackages, qsBlocklist, qsClients, qsMessages, qsPreviousAuthKeys, qsUsers } from "./schema.js";

export type UserRow = typeof qsUsers.$inferSelect;
export type ClientRow = typeof qsClients.$inferSelect;

/** The user record with `userId`, or undefined. */
export async function findUser(db: Database, userId: Uint8Array, lock = false): Promise<UserRow | undefined> {
  const query = db.select().from(qsUsers).where(eq(qsUsers.userId, userId));
  const [row] = lock ? await query.for("update") : await query;
  return row;
}

/** The user record holding the friendship token with this lookup hash. */
export async function findUserByTokenHash(db: Database, hash: Uint8Array): Promise<UserRow | undefined> {
  const [row] = await db.select().from(qsUsers).where(eq(qsUsers.friendshipTokenHash, hash));
  return row;
}

/** The client record with `clientId`, or undefined. */
export async function findClient(
  db: Database,
  clientId: Uint8Array,
  lock = false,
): Promise<ClientRow | undefined> {
  const query = db.select().from(qsClients).where(eq(qsClients.clientId, clientId));
  const [row] = lock ? await query.for("update") : await query;
  return row;
}

/** The client records of a user, oldest id order. */
export async function clientsOf(db: Database, userId: Uint8Array): Promise<ClientRow[]> {
  return db.select().from(qsClients).where(eq(qsClients.userId, userId)).orderBy(asc(qsClients.clientId));
}

/** Inserts a client record and its queue's first message. */
export async function insertClient(
  db: Database,
  row: typeof qsClients.$inferInsert,
  initMessage: Uint8Array,
): Promise<void> {
  await db.insert(qsClients).values({ ...row, queueDepth: 1 });
  // The Init message never expires: without it the owner cannot read the queue at all.
  await db
    .insert(qsMessages)
    .values({ clientId: row.clientId, seq: 0n, message: initMessage, expiresAt: null });
}

/**
 * Deletes a client record (queue, blocklist and AddPackages cascade) and the user record when
 * it was the last one. Returns whether the user record went too.
 */
export async function deleteClientRecord(
  db: Database,
  client: Pick<ClientRow, "clientId" | "userId">,
): Promise<boolean> {
  await db.delete(qsClients).where(eq(qsClients.clientId, client.clientId));
  const [left] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(qsClients)
    .where(eq(qsClients.userId, client.userId));
  if ((left?.n ?? 0) > 0) return false;
  await db.delete(qsUsers).where(eq(qsUsers.userId, client.userId));
  return true;
}

/** Refreshes a client's activity month (writes only when the month changed). */
export async function touchClient(db: Database, clientId: Uint8Array, month: Date): Promise<void> {
  await db
    .update(qsClients)
    .set({ lastActiveAt: month })
    .where(and(eq(qsClients.clientId, clientId), ne(qsClients.lastActiveAt, month)));
}

/** Deletes client records inactive since before `cutoff` and users left without clients. */
export async function deleteInactiveClients(db: Database, cutoff: Date): Promise<number> {
  const gone = await db
    .delete(qsClients)
    .where(lt(qsClients.lastActiveAt, cutoff))
    .returning({ userId: qsClients.userId });
  if (gone.length > 0) {
    const users = [...new Map(gone.map((g) => [Buffer.from(g.userId).toString("hex"), g.userId])).values()];
    await db
      .delete(qsUsers)
      .where(
        and(
          inArray(qsUsers.userId, users),
          sql`not exists (select 1 from ${qsClients} where ${qsClients.userId} = ${qsUsers.userId})`,
        ),
      );
  }
  return gone.length;
}

/** Messages of a queue from `start` on, at most `limit`. */
export async function readMessages(
  db: Database,
  clientId: Uint8Array,
  start: bigint,
  limit: number,
): Promise<{ seq: bigint; message: Uint8Array }[]> {
  return db
    .select({ seq: qsMessages.seq, message: qsMessages.message })
    .from(qsMessages)
    .where(and(eq(qsMessages.clientId, clientId), gte(qsMessages.seq, start)))
    .orderBy(asc(qsMessages.seq))
    .limit(limit);
}

/** Deletes the messages of a queue below `start` and lowers its depth count by as many. */
export async function deleteMessagesBelow(db: Database, clientId: Uint8Array, start: bigint): Promise<void> {
  // One statement: the count can never disagree with the rows, whatever runs concurrently.
  await db.execute(sql`
    with gone as (
      delete from ${qsMessages} where client_id = ${clientId} and seq < ${String(start)}::int8 returning 1
    )
    update ${qsClients} set queue_depth = queue_depth - (select count(*) from gone)::int
    where client_id = ${clientId} and exists (select 1 from gone)`);
}

/**
 * Deletes up to `limit` messages whose expiry passed (oldest first) and lowers their queues'
 * depth counts; returns how many went. The queues' rows are locked in id order first, the order
 * the fan-out consumer locks them in, so the two never deadlock.
 */
export async function expireMessages(db: Database, now: Date, limit: number): Promise<number> {
  return transaction(db, async (tx) => {
    const due = await tx
      .select({ clientId: qsMessages.clientId, seq: qsMessages.seq })
      .from(qsMessages)
      .where(lte(qsMessages.expiresAt, now))
      .orderBy(asc(qsMessages.expiresAt))
      .limit(limit);
    if (due.length === 0) return 0;
    const perQueue = new Map<string, { clientId: Uint8Array; seqs: bigint[] }>();
    for (const d of due) {
      const key = toHex(d.clientId);
      const entry = perQueue.get(key) ?? { clientId: d.clientId, seqs: [] };
      entry.seqs.push(d.seq);
      perQueue.set(key, entry);
    }
    const queues = [...perQueue.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, q]) => q);
    await tx
      .select({ clientId: qsClients.clientId })
      .from(qsClients)
      .where(
        inArray(
          qsClients.clientId,
          queues.map((q) => q.clientId),
        ),
      )
      .orderBy(qsClients.clientId)
      .for("update");
    let total = 0;
    for (const q of queues) {
      const gone = await tx
        .delete(qsMessages)
        .where(
          and(
            eq(qsMessages.clientId, q.clientId),
            inArray(qsMessages.seq, q.seqs),
            lte(qsMessages.expiresAt, now),
          ),
        )
        .returning({ seq: qsMessages.seq });
      if (gone.length === 0) continue;
      total += gone.length;
      await tx
        .update(qsClients)
        .set({ queueDepth: sql`${qsClients.queueDepth} - ${gone.length}` })
        .where(eq(qsClients.clientId, q.clientId));
    }
    return total;
  });
}

/** Number of blocklist entries of a queue. */
export async function blocklistSize(db: Database, clientId: Uint8Array): Promise<number> {
  const [row] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(qsBlocklist)
    .where(eq(qsBlocklist.clientId, clientId));
  return row?.n ?? 0;
}

/** Number of AddPackages of a client. */
export async function addPackageCount(db: Database, clientId: Uint8Array): Promise<number> {
  const [row] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(qsAddPackages)
    .where(eq(qsAddPackages.clientId, clientId));
  return row?.n ?? 0;
}

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
