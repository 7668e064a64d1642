import type { Database } from "@phoenix/runtime/db";
import { and, asc, count, eq, gte, lt, lte } from "drizzle-orm";
import type { PackageOwner } from "./connection-packages.js";
import { connectionQueues, queueMessages } from "./schema.js";

export type QueueRow = typeof connectionQueues.$inferSelect;

function ownedBy(owner: PackageOwner) {
  return "handleHash" in owner
    ? eq(connectionQueues.handleHash, owner.handleHash)
    : and(
        eq(connectionQueues.userUuid, owner.client.userUuid),
        eq(connectionQueues.clientUuid, owner.client.clientUuid),
      );
}

/** Creates a queue for `owner` with its first messages. */
export async function insertQueue(
  db: Database,
  owner: PackageOwner,
  queue: { queueId: Uint8Array; encryptionKey: Uint8Array; ratchetState: Uint8Array; nextSequence: bigint },
  messages: QueuedMessage[],
): Promise<void> {
  const ownerColumns =
    "handleHash" in owner
      ? { handleHash: owner.handleHash, userUuid: null, clientUuid: null }
      : { handleHash: null, userUuid: owner.client.userUuid, clientUuid: owner.client.clientUuid };
  await db.insert(connectionQueues).values({ ...ownerColumns, ...queue });
  await insertMessages(db, queue.queueId, messages);
}

/** The queue of `owner`, optionally locked for an enqueue. */
export async function findQueue(
  db: Database,
  owner: PackageOwner,
  lock = false,
): Promise<QueueRow | undefined> {
  const query = db.select().from(connectionQueues).where(ownedBy(owner)).limit(1);
  const rows = lock ? await query.for("update") : await query;
  return rows[0];
}

/** A message to store; `expiresAt` unset: kept until the owner acknowledges it. */
export interface QueuedMessage {
  sequenceNumber: bigint;
  ciphertext: Uint8Array;
  expiresAt?: Date | null;
}

/** Appends encrypted messages. */
export async function insertMessages(
  db: Database,
  queueId: Uint8Array,
  messages: QueuedMessage[],
): Promise<void> {
  if (messages.length === 0) return;
  await db.insert(queueMessages).values(
    messages.map((m) => ({
      queueId,
      sequenceNumber: m.sequenceNumber,
      ciphertext: m.ciphertext,
      expiresAt: m.expiresAt ?? null,
    })),
  );
}

/** Stores the advanced ratchet. */
export async function updateRatchet(
  db: Database,
  queueId: Uint8Array,
  ratchetState: Uint8Array,
  nextSequence: bigint,
): Promise<void> {
  await db
    .update(connectionQueues)
    .set({ ratchetState, nextSequence })
    .where(eq(connectionQueues.queueId, queueId));
}

/** Deletes connection offers past their expiry (AS_QUEUE_MESSAGE_TTL) at `now` (ms); returns how many. */
export async function deleteExpiredOffers(db: Database, now: number): Promise<number> {
  const rows = await db
    .delete(queueMessages)
    .where(lte(queueMessages.expiresAt, new Date(now)))
    .returning({ sequenceNumber: queueMessages.sequenceNumber });
  return rows.length;
}

/** Deletes every message below `sequenceNumber` (acknowledged by the owner). */
export async function deleteMessagesBelow(
  db: Database,
  queueId: Uint8Array,
  sequenceNumber: bigint,
): Promise<void> {
  await db
    .delete(queueMessages)
    .where(and(eq(queueMessages.queueId, queueId), lt(queueMessages.sequenceNumber, sequenceNumber)));
}

/** Up to `limit` messages from `start` on, in order. */
export async function readMessages(
  db: Database,
  queueId: Uint8Array,
  start: bigint,
  limit: number,
): Promise<{ sequenceNumber: bigint; ciphertext: Uint8Array }[]> {
  return db
    .select({ sequenceNumber: queueMessages.sequenceNumber, ciphertext: queueMessages.ciphertext })
    .from(queueMessages)
    .where(and(eq(queueMessages.queueId, queueId), gte(queueMessages.sequenceNumber, start)))
    .orderBy(asc(queueMessages.sequenceNumber))
    .limit(limit);
}

/** Messages stored in a queue from `start` on. */
export async function countMessages(db: Database, queueId: Uint8Array, start = 0n): Promise<number> {
  const rows = await db
    .select({ n: count() })
    .from(queueMessages)
    .where(and(eq(queueMessages.queueId, queueId), gte(queueMessages.sequenceNumber, start)));
  return rows[0]?.n ?? 0;
}
