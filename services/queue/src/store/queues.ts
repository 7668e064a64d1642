import { toHex } from "@phoenix/crypto";
import { type Database, transaction } from "@phoenix/runtime/db";
import { and, asc, eq, gte, inArray, lte, sql } from "drizzle-orm";
import { packBytea } from "./packed-bytea.js";
import { qsClients, qsMessages } from "./schema.js";

/** A message to store in a client queue. */
export interface NewQueueMessage {
  clientId: Uint8Array;
  seq: bigint;
  message: Uint8Array;
  /** Null: never expires. */
  expiresAt: Date | null;
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

/** Stores one message in a queue (the caller updates the queue's depth). */
export async function insertQueueMessage(db: Database, message: NewQueueMessage): Promise<void> {
  await db.insert(qsMessages).values(message);
}

/**
 * Stores many messages in one statement whatever their number: the columns travel as arrays
 * through `unnest`, the byte columns packed into one binary parameter each (packed-bytea.ts), so
 * neither the statement's text nor its parameter list grows with the batch. The caller updates
 * the queues' depths.
 */
export async function insertQueueMessages(db: Database, messages: readonly NewQueueMessage[]): Promise<void> {
  if (messages.length === 0) return;
  const ids = packBytea(messages.map((m) => m.clientId));
  const bodies = packBytea(messages.map((m) => m.message));
  await db.execute(sql`
    insert into ${qsMessages} (client_id, seq, message, expires_at)
    select substring(${ids.blob}::bytea from v.io for v.il), v.seq,
      substring(${bodies.blob}::bytea from v.mo for v.ml), v.expires_at
    from unnest(
      ${sql.param(ids.offsets)}::int4[], ${sql.param(ids.lengths)}::int4[],
      ${sql.param(messages.map((m) => String(m.seq)))}::int8[],
      ${sql.param(bodies.offsets)}::int4[], ${sql.param(bodies.lengths)}::int4[],
      ${sql.param(messages.map((m) => m.expiresAt?.toISOString() ?? null))}::timestamptz[]
    ) as v(io, il, seq, mo, ml, expires_at)`);
}
