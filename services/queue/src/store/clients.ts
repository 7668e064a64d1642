import type { Database } from "@phoenix/runtime/db";
import { and, asc, eq, inArray, lt, ne, sql } from "drizzle-orm";
import { packBytea } from "./packed-bytea.js";
import { qsBlocklist, qsClients, qsMessages, qsPreviousAuthKeys, qsUsers } from "./schema.js";

export type ClientRow = typeof qsClients.$inferSelect;

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

/** Number of client records of a user. */
export async function countClientsOf(db: Database, userId: Uint8Array): Promise<number> {
  const [row] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(qsClients)
    .where(eq(qsClients.userId, userId));
  return row?.n ?? 0;
}

/** Replaces a client's auth and queue keys; a changed queue key makes a key update due. */
export async function updateClientKeys(
  db: Database,
  clientId: Uint8Array,
  keys: { authKey: Uint8Array; queueKey: Uint8Array },
  keyUpdateDue: boolean,
): Promise<void> {
  await db
    .update(qsClients)
    .set({ ...keys, ...(keyUpdateDue ? { keyUpdateDue: true } : {}) })
    .where(eq(qsClients.clientId, clientId));
}

/** Sets (null: clears) a client's push token as stored at rest. */
export async function setEncryptedPushToken(
  db: Database,
  clientId: Uint8Array,
  encryptedPushToken: Uint8Array | null,
): Promise<void> {
  await db.update(qsClients).set({ encryptedPushToken }).where(eq(qsClients.clientId, clientId));
}

/**
 * Deletes a client's push token after its provider called it unregistered — only if it is still
 * the token that was pushed to (the client may have set a new one meanwhile). True if deleted.
 */
export async function clearPushTokenIf(
  db: Database,
  clientId: Uint8Array,
  encryptedPushToken: Uint8Array,
): Promise<boolean> {
  const rows = await db
    .update(qsClients)
    .set({ encryptedPushToken: null })
    .where(and(eq(qsClients.clientId, clientId), eq(qsClients.encryptedPushToken, encryptedPushToken)))
    .returning({ clientId: qsClients.clientId });
  return rows.length > 0;
}

/** Marks a queue as held by a Listen stream until `until` (null: not held). */
export async function setListenerUntil(
  db: Database,
  clientId: Uint8Array,
  until: Date | null,
): Promise<void> {
  await db.update(qsClients).set({ listenerUntil: until }).where(eq(qsClients.clientId, clientId));
}

/** What the fan-out consumer reads of a recipient's client record. */
export type RecipientState = Pick<
  ClientRow,
  | "clientId"
  | "authKey"
  | "queueKey"
  | "encryptedRatchet"
  | "lastKeyUpdateAt"
  | "keyUpdateDue"
  | "encryptedPushToken"
  | "listenerUntil"
  | "queueDepth"
  | "gapOpen"
>;

/** A recipient's locked queue state with what verifying its configs and its blocklist need. */
export interface LockedRecipient extends RecipientState {
  /** Replaced auth keys still in their grace period at the read's `now`, newest first. */
  previousAuthKeys: Uint8Array[];
  /** The queue's blocklist entries (keyed hashes). */
  blocklist: Uint8Array[];
}

/**
 * Locks the client records of `sortedIds` and reads, in one statement, their queue state, the
 * replaced auth keys still valid at `now` (newest first) and their blocklist entries. The ids
 * must be sorted (bytewise): replicas and the expiry sweep lock in that order, so they never
 * deadlock. `for update` locks the client rows only, not the joined keys or entries.
 */
export async function lockRecipients(
  db: Database,
  sortedIds: readonly Uint8Array[],
  now: Date,
): Promise<LockedRecipient[]> {
  if (sortedIds.length === 0) return [];
  const rows = await db
    .select({
      clientId: qsClients.clientId,
      authKey: qsClients.authKey,
      queueKey: qsClients.queueKey,
      encryptedRatchet: qsClients.encryptedRatchet,
      lastKeyUpdateAt: qsClients.lastKeyUpdateAt,
      keyUpdateDue: qsClients.keyUpdateDue,
      encryptedPushToken: qsClients.encryptedPushToken,
      listenerUntil: qsClients.listenerUntil,
      queueDepth: qsClients.queueDepth,
      gapOpen: qsClients.gapOpen,
      previousAuthKeys: sql<unknown>`(
        select array_agg(p.auth_key order by p.valid_until desc) from ${qsPreviousAuthKeys} p
        where p.client_id = ${qsClients.clientId} and p.valid_until > ${now.toISOString()}::timestamptz)`,
      blocklist: sql<unknown>`(
        select array_agg(b.entry) from ${qsBlocklist} b where b.client_id = ${qsClients.clientId})`,
    })
    .from(qsClients)
    .where(inArray(qsClients.clientId, [...sortedIds]))
    .orderBy(qsClients.clientId)
    .for("update");
  return rows.map((row) => ({
    ...row,
    previousAuthKeys: byteaArray(row.previousAuthKeys, "previous auth keys"),
    blocklist: byteaArray(row.blocklist, "blocklist"),
  }));
}

/** A `bytea[]` read from a driver (null: none) as plain Uint8Arrays, like the bytea column. */
function byteaArray(value: unknown, what: string): Uint8Array[] {
  if (value === null || value === undefined) return [];
  if (!Array.isArray(value)) throw new TypeError(`${what}: unexpected driver value of type ${typeof value}`);
  return value.map((item: unknown) => {
    if (item instanceof Uint8Array) {
      return Object.getPrototypeOf(item) === Uint8Array.prototype ? item : new Uint8Array(item);
    }
    if (typeof item === "string" && item.startsWith("\\x"))
      return new Uint8Array(Buffer.from(item.slice(2), "hex"));
    throw new TypeError(`${what}: unexpected array item of type ${typeof item}`);
  });
}

/** A queue's sender state after a batch, and how many messages the batch stored in it. */
export interface RatchetStateUpdate {
  clientId: Uint8Array;
  encryptedRatchet: Uint8Array;
  nextSeq: bigint;
  lastKeyUpdateAt: Date;
  keyUpdateDue: boolean;
  added: number;
  gapOpen: boolean;
}

/** Writes the queues' ratchet states in one statement (an unnest update), whatever their number. */
export async function saveRatchetStates(db: Database, updates: readonly RatchetStateUpdate[]): Promise<void> {
  if (updates.length === 0) return;
  // The depth grows by what was stored: relative, so a concurrent Dequeue's decrement holds.
  // The byte columns travel packed (packed-bytea.ts), not as text-encoded bytea[].
  const ids = packBytea(updates.map((u) => u.clientId));
  const ratchets = packBytea(updates.map((u) => u.encryptedRatchet));
  await db.execute(sql`
        update ${qsClients} as c set
          encrypted_ratchet = v.ratchet, next_seq = v.next_seq,
          last_key_update_at = v.updated_at, key_update_due = v.due,
          queue_depth = c.queue_depth + v.added, gap_open = v.gap
        from (
          select substring(${ids.blob}::bytea from u.io for u.il) as client_id,
            substring(${ratchets.blob}::bytea from u.ro for u.rl) as ratchet,
            u.next_seq, u.updated_at, u.due, u.added, u.gap
          from unnest(
            ${sql.param(ids.offsets)}::int4[], ${sql.param(ids.lengths)}::int4[],
            ${sql.param(ratchets.offsets)}::int4[], ${sql.param(ratchets.lengths)}::int4[],
            ${sql.param(updates.map((u) => String(u.nextSeq)))}::int8[],
            ${sql.param(updates.map((u) => u.lastKeyUpdateAt.toISOString()))}::timestamptz[],
            ${sql.param(updates.map((u) => u.keyUpdateDue))}::boolean[],
            ${sql.param(updates.map((u) => u.added))}::int4[],
            ${sql.param(updates.map((u) => u.gapOpen))}::boolean[]
          ) as u(io, il, ro, rl, next_seq, updated_at, due, added, gap)
        ) as v
        where c.client_id = v.client_id`);
}

/**
 * Locks up to `limit` queues whose last key update is before `before`, oldest first; rows
 * another transaction holds are skipped.
 */
export async function lockIdleQueues(
  db: Database,
  before: Date,
  limit: number,
): Promise<Pick<ClientRow, "clientId" | "queueKey" | "encryptedRatchet">[]> {
  return db
    .select({
      clientId: qsClients.clientId,
      queueKey: qsClients.queueKey,
      encryptedRatchet: qsClients.encryptedRatchet,
    })
    .from(qsClients)
    .where(lt(qsClients.lastKeyUpdateAt, before))
    .orderBy(asc(qsClients.lastKeyUpdateAt))
    .limit(limit)
    .for("update", { skipLocked: true });
}

/** Stores a queue's sender state after a key update it just received (one message more). */
export async function saveKeyUpdate(
  db: Database,
  clientId: Uint8Array,
  state: { encryptedRatchet: Uint8Array; nextSeq: bigint; lastKeyUpdateAt: Date },
): Promise<void> {
  await db
    .update(qsClients)
    .set({
      ...state,
      keyUpdateDue: false,
      queueDepth: sql`${qsClients.queueDepth} + 1`,
      gapOpen: false,
    })
    .where(eq(qsClients.clientId, clientId));
}
