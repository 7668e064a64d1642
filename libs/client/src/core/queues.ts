// Positions in this client's queues (QS queue, AS connection queue, one per handle): the next
// sequence number and the queue ratchet, advanced together so no message is processed twice.
import { decodeQueueMessage, type HpkeKeyPair, QueueRatchetReceiver } from "@phoenix/crypto";
import { common } from "@phoenix/proto";
import type { ClientStore } from "../store/client-store.js";

/** A handle this client holds: the handle, its signing key seed and queue key (hex). */
export interface StoredHandle {
  handle: string;
  keySeed: string;
  queueKey: string;
}

/** Queue positions and ratchets, and the handles whose queues this client reads. */
export class QueuePositions {
  constructor(private readonly store: ClientStore) {}

  /** The sequence number of the next message of queue `queueName` to process. */
  seq(queueName: string): bigint {
    return BigInt(this.store.getJson<string>(`${queueName}.next`) ?? "0");
  }

  /**
   * Decrypts one queue message with the queue ratchet (message 0 starts it) and advances the stored
   * sequence number and ratchet, so a message is never processed twice.
   */
  open(
    queueName: string,
    key: HpkeKeyPair,
    context: Uint8Array,
    m: common.QueueMessage,
  ): common.QueuePayload | undefined {
    const decoded = decodeQueueMessage(m.ciphertext);
    const stored = this.store.getBytes(`${queueName}.ratchet`);
    let payload: common.QueuePayload | undefined;
    let receiver: QueueRatchetReceiver;
    if (stored === undefined) {
      receiver = QueueRatchetReceiver.fromInit(key, context, decoded);
    } else {
      receiver = QueueRatchetReceiver.fromBytes(stored);
      const out = receiver.decrypt(decoded, key);
      if (out.kind === "message") payload = common.QueuePayload.decode(out.payload);
    }
    this.store.transaction(() => {
      this.store.setBytes(`${queueName}.ratchet`, receiver.toBytes());
      this.store.setJson(`${queueName}.next`, (m.sequenceNumber + 1n).toString());
    });
    return payload;
  }

  storedHandles(): StoredHandle[] {
    return this.store.getJson<StoredHandle[]>("handles") ?? [];
  }

  /** Keeps `handle` (replacing an earlier entry for the same handle). */
  storeHandle(handle: StoredHandle): void {
    const all = this.storedHandles().filter((h) => h.handle !== handle.handle);
    all.push(handle);
    this.store.setJson("handles", all);
  }
}
