import {
  ClientCredential,
  createConnectionPackage,
  decodeQueueMessage,
  expirationFrom,
  type HpkeKeyPair,
  QueueRatchetReceiver,
} from "@phoenix/crypto";
import { auth, common } from "@phoenix/proto";
import { expect } from "vitest";
import { connectionQueueContext } from "../../src/domain/ids.js";
import { type Harness, S, signAs, type TestClient } from "./harness.js";

const DAY = 24 * 3_600_000;

/** A user-id connection package of `client`, valid for a week. */
export function packageOf(client: TestClient, now: Date): Uint8Array {
  return createConnectionPackage({
    clientKey: client.key,
    clientCredential: ClientCredential.decode(client.credential),
    lifetime: expirationFrom(now.getTime() - 1000, 7 * DAY),
  }).bytes;
}

/** Publishes `packages` as `client`. */
export async function publish(h: Harness, client: TestClient, packages: auth.PublishedConnectionPackage[]) {
  return h.as.publishConnectionPackages({
    signed: await signAs(
      client,
      auth.PublishConnectionPackagesTbs,
      S.publishConnectionPackages,
      { packages },
      h.now(),
    ),
  });
}

/** Reads a queue as its owner would: message 0 starts the queue ratchet, then every offer decrypts. */
export class QueueReader {
  private receiver: QueueRatchetReceiver | undefined;
  readonly offers: Uint8Array[] = [];

  constructor(
    private readonly keyPair: HpkeKeyPair,
    private readonly context: Uint8Array,
  ) {}

  read(message: common.QueueMessage): void {
    const decoded = decodeQueueMessage(message.ciphertext);
    expect(BigInt(decoded.sequenceNumber)).toBe(message.sequenceNumber);
    if (!this.receiver) {
      this.receiver = QueueRatchetReceiver.fromInit(this.keyPair, this.context, decoded);
      return;
    }
    const result = this.receiver.decrypt(decoded, this.keyPair);
    if (result.kind === "message") {
      const payload = common.QueuePayload.decode(result.payload);
      if (payload.content?.$case !== "connectionOffer") throw new Error("not a connection offer");
      this.offers.push(payload.content.value);
    }
  }
}

/** The queue-ratchet context of a client's connection queue. */
export function clientContext(client: TestClient): Uint8Array {
  return connectionQueueContext({
    client: { userUuid: client.clientId.userId.uuid, clientUuid: client.clientId.clientUuid },
  });
}

/** Dequeues as the owner of the queue. */
export async function dequeue(h: Harness, client: TestClient, start: bigint, maxMessages = 0) {
  return h.as.dequeueConnectionOffers({
    signed: await signAs(
      client,
      auth.DequeueConnectionOffersTbs,
      S.dequeueConnectionOffers,
      { sequenceNumberStart: start, maxMessages },
      h.now(),
    ),
  });
}
