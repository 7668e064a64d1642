import { encodeQueueMessage, HpkePublicKey } from "@phoenix/crypto";
import { type Database, transaction } from "@phoenix/runtime/db";
import { keyUpdateStamp, openRatchet, sealRatchet } from "../domain/queue-ratchet.js";
import type { StorageKeys } from "../domain/storage-keys.js";
import { lockIdleQueues, saveKeyUpdate } from "../store/clients.js";
import { insertQueueMessage } from "../store/queues.js";

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
    const idle = await lockIdleQueues(tx, new Date(options.now - options.olderThanMs), options.limit);
    const updated: UpdatedQueue[] = [];
    for (const row of idle) {
      const sender = openRatchet(storage, row.clientId, row.encryptedRatchet);
      const update = sender.rotate(HpkePublicKey.fromBytes(row.queueKey));
      const seq = BigInt(update.sequenceNumber);
      // Key updates never expire and are never dropped, full queue or not (at most one a
      // day per idle queue): a lost one would leave the owner unable to read on.
      await insertQueueMessage(tx, {
        clientId: row.clientId,
        seq,
        message: encodeQueueMessage(update),
        expiresAt: null,
      });
      await saveKeyUpdate(tx, row.clientId, {
        encryptedRatchet: sealRatchet(storage, row.clientId, sender),
        nextSeq: BigInt(sender.nextSequenceNumber),
        lastKeyUpdateAt: stamp,
      });
      updated.push({ clientId: row.clientId, seq });
    }
    return updated;
  });
}
