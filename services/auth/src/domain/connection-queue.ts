import { encodeQueueMessage, HpkePublicKey, type QueueMessage, QueueRatchetSender } from "@phoenix/crypto";
import { common } from "@phoenix/proto";
import { checking, malformed } from "./errors.js";

/** A message as it is stored: the queue-ratchet ciphertext at its sequence number. */
export interface StoredQueueMessage {
  sequenceNumber: bigint;
  ciphertext: Uint8Array;
  /**
   * A connection offer (true) may expire; a queue-ratchet message (Init, key update) may not: the
   * owner needs it to read every later message.
   */
  offer: boolean;
}

/** The server half of a queue after a change: what to persist. */
export interface QueueUpdate {
  ratchetState: Uint8Array;
  nextSequence: bigint;
  messages: StoredQueueMessage[];
}

function stored(m: QueueMessage, offer = false): StoredQueueMessage {
  return { sequenceNumber: BigInt(m.sequenceNumber), ciphertext: encodeQueueMessage(m), offer };
}

/** Parses the owner's HPKE queue encryption key (X25519, 32 bytes). */
export function parseQueueEncryptionKey(raw: Uint8Array, field: string): HpkePublicKey {
  if (raw.length !== 32) throw malformed(field, "must be a 32-byte X25519 public key");
  return checking(field, () => HpkePublicKey.fromBytes(raw));
}

/**
 * Starts the queue ratchet of a new connection queue: message 0 carries the initial ratchet
 * secret, HPKE-encrypted to the owner's queue encryption key.
 */
export function createConnectionQueue(encryptionKey: HpkePublicKey, context: Uint8Array): QueueUpdate {
  const { sender, message } = QueueRatchetSender.create(encryptionKey, context);
  return {
    ratchetState: sender.toBytes(),
    nextSequence: BigInt(sender.nextSequenceNumber),
    messages: [stored(message)],
  };
}

/**
 * Encrypts a connection offer as the next message of a queue (a QueuePayload with the AS's
 * enqueue time `now`, in ms). Every `keyUpdateInterval` messages the ratchet first gets fresh randomness (a
 * key update message), so a stolen ratchet state stops being useful (post-compromise security).
 */
export function enqueueOffer(
  queue: { ratchetState: Uint8Array; encryptionKey: Uint8Array },
  offer: Uint8Array,
  now: number,
  keyUpdateInterval: number,
): QueueUpdate {
  const sender = QueueRatchetSender.fromBytes(queue.ratchetState);
  const messages: StoredQueueMessage[] = [];
  if (sender.messagesSinceUpdate >= keyUpdateInterval) {
    messages.push(stored(sender.rotate(HpkePublicKey.fromBytes(queue.encryptionKey))));
  }
  const payload = common.QueuePayload.encode({
    timestamp: new Date(now),
    content: { $case: "connectionOffer", value: offer },
  }).finish();
  messages.push(stored(sender.encrypt(payload), true));
  return { ratchetState: sender.toBytes(), nextSequence: BigInt(sender.nextSequenceNumber), messages };
}

/** Checks a dequeue/listen start against the queue: it may not lie beyond the next sequence number. */
export function checkSequenceStart(start: bigint, nextSequence: bigint, field: string): void {
  if (start > nextSequence) {
    throw malformed(field, `${start} is beyond the queue's next sequence number ${nextSequence}`);
  }
}

/** How many messages one dequeue returns: the request's maximum, capped by the server's. */
export function dequeueLimit(requested: number, serverMax: number): number {
  return requested === 0 || requested > serverMax ? serverMax : requested;
}
