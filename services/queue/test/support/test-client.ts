// The client side of the QS, as a Phoenix client implements it: keys, signed requests, and the
// queue ratchet receiver that decrypts what arrives.

import type { Metadata } from "@grpc/grpc-js";
import {
  decodeQueueMessage,
  HpkeKeyPair,
  HpkePublicKey,
  QueueRatchetReceiver,
  randomBytes,
  SigningKey,
  sealPushToken,
  sealQueueConfig,
} from "@phoenix/crypto";
import { type common, queue, requestHeader, rpcLabel, signTbs } from "@phoenix/proto";
import type { QsClient } from "./harness.js";

type Service = typeof queue.QueueServiceService;
type Tbs = { header: common.RequestHeader | undefined };

/** One QS client record (device) of a test user, with everything its owner holds. */
export class TestClient {
  clientKey = SigningKey.generate();
  queueKeyPair = HpkeKeyPair.generate();
  receiver: QueueRatchetReceiver | undefined;
  clientId: Uint8Array = new Uint8Array(0);
  /** The time requests are signed at (tests move it with the server clock). */
  clock: () => Date = () => new Date();
  /** Decrypted payloads in order. */
  readonly received: Uint8Array[] = [];

  constructor(
    /** The current gRPC client (it changes when the harness restarts the service). */
    private readonly qsOf: () => QsClient,
    readonly user: TestUserKeys,
    readonly qsKey: HpkePublicKey,
    readonly domain: string,
  ) {}

  get qs(): QsClient {
    return this.qsOf();
  }

  /** Registers a new user with its first client record. */
  static async register(
    qsOf: () => QsClient,
    keys: queue.GetQueueConfigEncryptionKeyResponse,
    domain: string,
    options: { pushToken?: queue.PushToken; metadata?: Metadata } = {},
  ): Promise<TestClient> {
    const current = keys.keys.find((k) => k.current);
    if (!current) throw new Error("no current queue-config key");
    const qsKey = HpkePublicKey.fromBytes(current.publicKey);
    const user: TestUserKeys = {
      userKey: SigningKey.generate(),
      friendshipToken: randomBytes(32),
      userId: new Uint8Array(0),
    };
    const client = new TestClient(qsOf, user, qsKey, domain);
    const signed = await signTbs(
      queue.CreateUserTbs,
      {
        header: requestHeader(rpcLabel(queue.QueueServiceService.createUser), undefined),
        userRecordAuthKey: user.userKey.publicKey,
        friendshipToken: user.friendshipToken,
        clientRecordAuthKey: client.clientKey.publicKey,
        queueEncryptionKey: client.queueKeyPair.publicKey.bytes,
        sealedPushToken: options.pushToken
          ? sealPushToken(qsKey, queue.PushToken.encode(options.pushToken).finish())
          : new Uint8Array(0),
      },
      (label, bytes) => user.userKey.sign(label, bytes),
    );
    const res = await qsOf().createUser(
      { signed },
      options.metadata !== undefined ? { metadata: options.metadata } : {},
    );
    user.userId = res.qsUserId;
    client.clientId = res.qsClientId;
    return client;
  }

  /** Adds another client record to this client's user. */
  async addClient(): Promise<TestClient> {
    const other = new TestClient(this.qsOf, this.user, this.qsKey, this.domain);
    const res = await this.qs.createClient({
      signed: await this.userSigned(queue.CreateClientTbs, "createClient", {
        clientRecordAuthKey: other.clientKey.publicKey,
        queueEncryptionKey: other.queueKeyPair.publicKey.bytes,
        sealedPushToken: new Uint8Array(0),
      }),
    });
    other.clientId = res.qsClientId;
    return other;
  }

  /** A fresh sealed queue config naming this client's queue (what the DS stores per member). */
  qsReference(): common.QsReference {
    return {
      domain: this.domain,
      sealedQueueConfig: sealQueueConfig({
        qsKey: this.qsKey,
        domain: this.domain,
        clientRecordId: this.clientId,
        recordKey: this.clientKey,
      }),
    };
  }

  /** A request signed with the user record key. */
  async userSigned<T extends Tbs>(
    type: { encode(m: T): { finish(): Uint8Array } },
    method: keyof Service,
    rest: Omit<T, "header">,
  ): Promise<common.Signed> {
    const header = requestHeader(
      rpcLabel(queue.QueueServiceService[method]),
      {
        $case: "qsUserId",
        value: this.user.userId,
      },
      this.clock(),
    );
    return signTbs(type as never, { header, ...rest } as T, (label, bytes) =>
      this.user.userKey.sign(label, bytes),
    );
  }

  /** A request signed with the client record key. */
  async signed<T extends Tbs>(
    type: { encode(m: T): { finish(): Uint8Array } },
    method: keyof Service,
    rest: Omit<T, "header">,
  ): Promise<common.Signed> {
    const header = requestHeader(
      rpcLabel(queue.QueueServiceService[method]),
      {
        $case: "qsClientId",
        value: this.clientId,
      },
      this.clock(),
    );
    return signTbs(type as never, { header, ...rest } as T, (label, bytes) =>
      this.clientKey.sign(label, bytes),
    );
  }

  /** Decrypts queue messages in order with the client's ratchet receiver. */
  decrypt(messages: readonly common.QueueMessage[]): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const m of messages) {
      const decoded = decodeQueueMessage(m.ciphertext);
      if (this.receiver === undefined) {
        this.receiver = QueueRatchetReceiver.fromInit(this.queueKeyPair, this.clientId, decoded);
        continue;
      }
      if (decoded.sequenceNumber < this.receiver.nextSequenceNumber) continue;
      const result = this.receiver.decrypt(decoded, this.queueKeyPair);
      if (result.kind === "message") out.push(result.payload);
    }
    this.received.push(...out);
    return out;
  }

  /** Dequeues from `start` and decrypts. */
  async dequeue(start: bigint, maxMessages = 0): Promise<queue.DequeueResponse> {
    return this.qs.dequeue({
      signed: await this.signed(queue.DequeueTbs, "dequeue", { sequenceNumberStart: start, maxMessages }),
    });
  }

  /** Fetches every queued message from `start` on (paging) and decrypts them. */
  async drain(start = 0n): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    let next = start;
    for (let page = 0; page < 1000; page++) {
      const res = await this.dequeue(next);
      out.push(...this.decrypt(res.messages));
      const last = res.messages.at(-1);
      if (last) next = last.sequenceNumber + 1n;
      if (res.remaining === 0n) break;
    }
    return out;
  }
}

/** What the user (all its clients) holds. */
export interface TestUserKeys {
  userKey: SigningKey;
  friendshipToken: Uint8Array;
  userId: Uint8Array;
}
