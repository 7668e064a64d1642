import { encodeQueueMessage, HpkePublicKey } from "@phoenix/crypto";
import { type Database, transaction } from "@phoenix/runtime/db";
import { asc, eq, lt, sql } from "drizzle-orm";
import { keyUpdateStamp, openRatchet, sealRatchet } from "../domain/queue-ratchet.js";
import type { StorageKeys } from "../domain/storage-keys.js";
import { qsClients, qsMessages } from "../store/schema.js";

/** A queue that received a key update (for listener wake-ups). */
export interface UpdatedQueue {
  clientId: Uint8Array;
  seq: bigint;
}

/**
 * Time-based queue ratchet key updates for idle queues: a queue that received no key update for
 * `olderThanMs` (it got no messages, or the fan-out path would have updated it) gets one now,
 * so a ratchet state leaked from the QS stops opening the queue's later messages even if
 * nothing was sent for a long time. Handles at most `limit` queues, oldest first, in one
 * transaction; rows another replica or the fan-out consumer holds are skipped (next run).
 */
export async function updateIdleQueues(
  db: Database,
  storage: StorageKeys,
  options: { now: number; olderThanMs: number; limit: number },
): Promise<UpdatedQueue[]> {
  // Stored coarse, like every key update time (domain/queue-ratchet.ts keyUpdateStamp).
  const stamp = keyUpdateStamp({ everyMessages: 0, everyMs: options.olderThanMs }, options.now);
  return transaction(db, async (tx) => {
    const idle = await tx
      .select({
        clientId: qsClients.clientId,
        queueKey: qsClients.queueKey,
        encryptedRatchet: qsClients.encryptedRatchet,
      })
      .from(qsClients)
      .where(lt(qsClients.lastKeyUpdateAt, new Date(options.now - options.olderThanMs)))
      .orderBy(asc(qsClients.lastKeyUpdateAt))
      .limit(options.limit)
      .for("update", { skipLocked: true });
    const updated: UpdatedQueue[] = [];
    for (const row of idle) {
      const sender = openRatchet(storage, row.clientId, row.encryptedRatchet);
      const update = sender.rotate(HpkePublicKey.fromBytes(row.queueKey));
      const seq = BigInt(update.sequenceNumber);
      await tx
        .insert(qsMessages)
        // Key updates never expire and are never dropped, full queue or not (at most one a
        // day per idle queue): a lost one would leave the owner unable to read on.
        .values({ clientId: row.clientId, seq, message: encodeQueueMessage(update), expiresAt: null });
      await tx
        .update(qsClients)
        .set({
          encryptedRatchet: sealRatchet(storage, row.clientId, sender),
          nextSeq: BigInt(sender.nextSequenceNumber),
          lastKeyUpdateAt: stamp,
          keyUpdateDue: false,
          queueDepth: sql`${qsClients.queueDepth} + 1`,
          gapOpen: false,
        })
        .where(eq(qsClients.clientId, row.clientId));
      updated.push({ clientId: row.clientId, seq });
    }
    return updated;
  });
}
