import { encodeQueueMessage, HpkePublicKey, QueueRatchetSender } from "@phoenix/crypto";
import { coarseStep, floorTo } from "./limits.js";
import { type StorageKeys, StorageLabel } from "./storage-keys.js";

/** A new queue: the sealed ratchet state and its first message (the Init key update at 0). */
export interface NewQueue {
  encryptedRatchet: Uint8Array;
  initMessage: Uint8Array;
  nextSeq: bigint;
}

/**
 * Starts the queue ratchet of a new client record. The QS samples the initial ratchet secret
 * and sends it HPKE-encrypted to the queue encryption key as the queue's first message; the
 * client id is the ratchet context bound into every message.
 */
export function newQueue(storage: StorageKeys, clientId: Uint8Array, queueKey: Uint8Array): NewQueue {
  const { sender, message } = QueueRatchetSender.create(HpkePublicKey.fromBytes(queueKey), clientId);
  return {
    encryptedRatchet: sealRatchet(storage, clientId, sender),
    initMessage: encodeQueueMessage(message),
    nextSeq: BigInt(sender.nextSequenceNumber),
  };
}

/** Encrypts a ratchet state at rest, bound to its queue. */
export function sealRatchet(
  storage: StorageKeys,
  clientId: Uint8Array,
  sender: QueueRatchetSender,
): Uint8Array {
  return storage.seal(StorageLabel.RatchetState, sender.toBytes(), clientId);
}

/** Decrypts a stored ratchet state. */
export function openRatchet(
  storage: StorageKeys,
  clientId: Uint8Array,
  sealed: Uint8Array,
): QueueRatchetSender {
  return QueueRatchetSender.fromBytes(storage.open(StorageLabel.RatchetState, sealed, clientId));
}

/** When the QS injects fresh randomness into a queue ratchet (post-compromise security). */
export interface RatchetUpdatePolicy {
  /** After this many messages since the last update. */
  everyMessages: number;
  /** Or when the last update is older than this. */
  everyMs: number;
}

/** Whether the next message must be preceded by a key update. */
export function keyUpdateDue(
  policy: RatchetUpdatePolicy,
  sender: QueueRatchetSender,
  lastUpdateAt: number,
  now: number,
  forced: boolean,
): boolean {
  return forced || sender.messagesSinceUpdate >= policy.everyMessages || now - lastUpdateAt >= policy.everyMs;
}

/**
 * The `last_key_update_at` stored for a key update at `now`: floored to 1/24 of the policy's
 * interval (at most an hour), so the time rule fires at most that much early and the stored
 * time does not date the record's creation or traffic exactly.
 */
export function keyUpdateStamp(policy: RatchetUpdatePolicy, now: number): Date {
  return floorTo(now, coarseStep(policy.everyMs));
}
