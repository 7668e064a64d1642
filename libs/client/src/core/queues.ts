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
   * Processes one queue message: decrypts it with the queue ratchet (message 0 starts it), then
   * runs `handle` on its payload (none for message 0 or a ratchet-internal message). The advanced
   * ratchet and sequence number commit with the first transaction `handle` makes — together
   * with the message's effects — or on their own once `handle` is done or has failed, so a
   * message is never processed twice and never lost to a crash between position and effects.
   */
  async process(
    queueName: string,
    key: HpkeKeyPair,
    context: Uint8Array,
    m: common.QueueMessage,
    handle: (payload: common.QueuePayload | undefined) => Promise<void>,
  ): Promise<void> {
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
    this.store.setBytesWithNextCommit(`${queueName}.ratchet`, receiver.toBytes());
    this.store.setJsonWithNextCommit(`${queueName}.next`, (m.sequenceNumber + 1n).toString());
    try {
      await handle(payload);
    } finally {
      this.store.flushPending();
    }
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
