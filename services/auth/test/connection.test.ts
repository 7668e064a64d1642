import { status } from "@grpc/grpc-js";
import {
  createHandleConnectionPackage,
  decodeQueueMessage,
  expirationFrom,
  HpkeKeyPair,
  handleHash,
  QueueMessageKind,
  randomBytes,
  SigningKey,
  toHex,
} from "@phoenix/crypto";
import { auth, type common } from "@phoenix/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  expectStatus,
  type Harness,
  newClient,
  registerUser,
  S,
  sign,
  signAs,
  startAuth,
} from "./support/harness.js";
import { clientContext, dequeue, packageOf, publish, QueueReader } from "./support/queue-helpers.js";

const DAY = 24 * 3_600_000;

describe("connection packages", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startAuth();
  });
  afterAll(async () => {
    await h?.close();
  });

  it("hands out one package per client, consumes ordinary ones and never the last resort", async () => {
    const alice = await registerUser(h);
    const ordinary = [packageOf(alice, h.now()), packageOf(alice, h.now())];
    const lastResort = packageOf(alice, h.now());
    await publish(h, alice, [
      { connectionPackage: ordinary[0]!, lastResort: false },
      { connectionPackage: lastResort, lastResort: true },
      { connectionPackage: ordinary[1]!, lastResort: false },
    ]);
    const handedOut: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { packages } = await h.as.getConnectionPackages({ userId: alice.wireId.user });
      expect(packages).toHaveLength(1);
      expect(toHex(packages[0]!.clientId!.clientUuid)).toBe(toHex(alice.clientId.clientUuid));
      handedOut.push(toHex(packages[0]!.connectionPackage));
    }
    expect(handedOut.slice(0, 2).sort()).toEqual(ordinary.map(toHex).sort());
    expect(handedOut.slice(2)).toEqual([toHex(lastResort), toHex(lastResort), toHex(lastResort)]);
  });

  it("refuses publications without last resort, too many or too large, or signed by someone else", async () => {
    const alice = await registerUser(h);
    const bob = await registerUser(h);
    await expectStatus(
      publish(h, alice, [{ connectionPackage: packageOf(alice, h.now()), lastResort: false }]),
      status.INVALID_ARGUMENT,
    );
    await expectStatus(publish(h, alice, []), status.INVALID_ARGUMENT);
    const many = Array.from({ length: 101 }, () => ({
      connectionPackage: packageOf(alice, h.now()),
      lastResort: true,
    }));
    await expectStatus(publish(h, alice, many), status.RESOURCE_EXHAUSTED);
    await expectStatus(
      publish(h, alice, [{ connectionPackage: new Uint8Array(4097), lastResort: true }]),
      status.RESOURCE_EXHAUSTED,
    );
    await expectStatus(
      publish(h, alice, [{ connectionPackage: packageOf(bob, h.now()), lastResort: true }]),
      status.INVALID_ARGUMENT,
    );
    await expectStatus(
      publish(h, alice, [{ connectionPackage: randomBytes(200), lastResort: true }]),
      status.INVALID_ARGUMENT,
    );
    await expectStatus(h.as.getConnectionPackages({ userId: newClient().wireId.user }), status.NOT_FOUND);
  });

  it("serves handle packages signed by the handle key, keeping the last resort", async () => {
    const handleKey = SigningKey.generate();
    const handle = `pkg_${toHex(randomBytes(4))}`;
    const hash = handleHash(handle);
    const sender = { $case: "handleHash" as const, value: hash };
    await h.as.createHandle({
      signed: await sign(
        auth.CreateHandleTbs,
        S.createHandle,
        {
          handle,
          handleHash: hash,
          verifyingKey: handleKey.publicKey,
          connectionQueueEncryptionKey: HpkeKeyPair.generate().publicKey.bytes,
        },
        handleKey,
        sender,
        h.now(),
      ),
    });
    const lifetime = expirationFrom(h.now().getTime() - 1000, 7 * DAY);
    const one = createHandleConnectionPackage({ handleKey, lifetime }).bytes;
    const last = createHandleConnectionPackage({ handleKey, lifetime }).bytes;
    const forged = createHandleConnectionPackage({ handleKey: SigningKey.generate(), lifetime }).bytes;
    const publishHandle = async (packages: auth.PublishedConnectionPackage[]) =>
      h.as.publishHandleConnectionPackages({
        signed: await sign(
          auth.PublishHandleConnectionPackagesTbs,
          S.publishHandleConnectionPackages,
          { packages },
          handleKey,
          sender,
          h.now(),
        ),
      });
    await expectStatus(
      publishHandle([{ connectionPackage: forged, lastResort: true }]),
      status.INVALID_ARGUMENT,
    );
    await publishHandle([
      { connectionPackage: one, lastResort: false },
      { connectionPackage: last, lastResort: true },
    ]);
    const got = [];
    for (let i = 0; i < 3; i++) {
      got.push(
        toHex((await h.as.getHandleConnectionPackage({ handleHash: hash, domain: "" })).connectionPackage),
      );
    }
    expect(got).toEqual([toHex(one), toHex(last), toHex(last)]);
    await expectStatus(
      h.as.getHandleConnectionPackage({ handleHash: handleHash("nobody-here"), domain: "" }),
      status.NOT_FOUND,
    );
  });
});

describe("connection queues", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startAuth({ AS_ENQUEUE_RATE_PER_MINUTE: "6", AS_QUEUE_KEY_UPDATE_INTERVAL: "2" });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("encrypts offers with the queue ratchet; the owner dequeues them by sequence number", async () => {
    const bob = await registerUser(h);
    const offers = [randomBytes(100), randomBytes(2000), randomBytes(16 * 1024)];
    for (const offer of offers)
      await h.as.enqueueConnectionOffer({ clientId: bob.wireId, connectionOffer: offer });

    const reader = new QueueReader(bob.queueKey, clientContext(bob));
    const first = await dequeue(h, bob, 0n, 2);
    expect(first.messages.map((m) => m.sequenceNumber)).toEqual([0n, 1n]);
    for (const m of first.messages) reader.read(m);
    // Key updates (every 2 messages here) are in the stream too; the reader follows them.
    const rest = await dequeue(h, bob, 2n);
    expect(rest.remaining).toBe(0n);
    for (const m of rest.messages) reader.read(m);
    expect(reader.offers.map(toHex)).toEqual(offers.map(toHex));

    // Everything below the start is deleted once asked for.
    const after = await dequeue(h, bob, rest.messages.at(-1)!.sequenceNumber + 1n);
    expect(after.messages).toHaveLength(0);
    await expectStatus(dequeue(h, bob, 1000n), status.INVALID_ARGUMENT);
  });

  it("refuses oversized offers, unknown targets and floods of one queue", async () => {
    const carol = await registerUser(h);
    await expectStatus(
      h.as.enqueueConnectionOffer({ clientId: carol.wireId, connectionOffer: new Uint8Array(16 * 1024 + 1) }),
      status.RESOURCE_EXHAUSTED,
    );
    await expectStatus(
      h.as.enqueueConnectionOffer({ clientId: carol.wireId, connectionOffer: new Uint8Array(0) }),
      status.INVALID_ARGUMENT,
    );
    await expectStatus(
      h.as.enqueueConnectionOffer({ clientId: newClient().wireId, connectionOffer: randomBytes(10) }),
      status.NOT_FOUND,
    );
    for (let i = 0; i < 6; i++)
      await h.as.enqueueConnectionOffer({ clientId: carol.wireId, connectionOffer: randomBytes(10) });
    await expectStatus(
      h.as.enqueueConnectionOffer({ clientId: carol.wireId, connectionOffer: randomBytes(10) }),
      status.RESOURCE_EXHAUSTED,
    );
  });

  it("redelivers messages on the next listen until they are acked, and delivers new ones live", async () => {
    const dave = await registerUser(h);
    const offers = [randomBytes(50), randomBytes(60)];
    for (const offer of offers)
      await h.as.enqueueConnectionOffer({ clientId: dave.wireId, connectionOffer: offer });

    const listen = async (start: bigint) => {
      const call = h.as.listenConnectionOffers();
      const init = await signAs(
        dave,
        auth.ListenConnectionOffersTbs,
        S.listenConnectionOffers,
        { sequenceNumberStart: start },
        h.now(),
      );
      await call.send({ request: { $case: "init", value: init } });
      return { call, events: call.responses[Symbol.asyncIterator]() };
    };
    const nextEvent = async (events: AsyncIterator<auth.ListenConnectionOffersResponse>) => {
      const next = await events.next();
      if (next.done) throw new Error("stream ended");
      return next.value.event;
    };
    const drain = async (events: AsyncIterator<auth.ListenConnectionOffersResponse>) => {
      const seen: common.QueueMessage[] = [];
      for (;;) {
        const event = await nextEvent(events);
        if (event?.$case === "empty") return seen;
        if (event?.$case === "message") seen.push(event.value);
      }
    };

    // First listen: everything queued, then `empty`; the stream is cut without an ack.
    const first = await listen(0n);
    const firstBatch = await drain(first.events);
    expect(firstBatch.length).toBeGreaterThanOrEqual(3);
    first.call.cancel();
    await expect(first.events.next()).rejects.toThrow();

    // Reconnect: the same messages come again; a new offer arrives live after `empty`.
    const second = await listen(0n);
    const again = await drain(second.events);
    expect(again.map((m) => toHex(m.ciphertext))).toEqual(firstBatch.map((m) => toHex(m.ciphertext)));
    const live = randomBytes(70);
    await h.as.enqueueConnectionOffer({ clientId: dave.wireId, connectionOffer: live });
    const liveEvents: common.QueueMessage[] = [];
    // The offer may be preceded by a key update; read until the offer itself arrived.
    while (
      liveEvents.length === 0 ||
      decodeQueueMessage(liveEvents.at(-1)!.ciphertext).kind !== QueueMessageKind.Message
    ) {
      const event = await nextEvent(second.events);
      if (event?.$case === "message") liveEvents.push(event.value);
    }
    const reader = new QueueReader(dave.queueKey, clientContext(dave));
    for (const m of [...again, ...liveEvents]) reader.read(m);
    expect(reader.offers.map(toHex)).toEqual([...offers, live].map(toHex));

    // Ack everything, end the stream; the next listen finds the queue empty.
    const upTo = liveEvents.at(-1)!.sequenceNumber + 1n;
    await second.call.send({ request: { $case: "ack", value: { upToSequenceNumber: upTo } } });
    second.call.end();
    for await (const _ of { [Symbol.asyncIterator]: () => second.events }) {
      // drain until the server ends the call
    }
    const third = await listen(upTo);
    expect(await drain(third.events)).toHaveLength(0);
    third.call.cancel();
    await expect(third.events.next()).rejects.toThrow();
  });

  it("refuses a listen that does not start with init, and an ack beyond what was sent", async () => {
    const erin = await registerUser(h);
    const call = h.as.listenConnectionOffers();
    await call.send({ request: { $case: "ack", value: { upToSequenceNumber: 0n } } });
    const events = call.responses[Symbol.asyncIterator]();
    await expect(events.next()).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });

    const ok = h.as.listenConnectionOffers();
    const init = await signAs(
      erin,
      auth.ListenConnectionOffersTbs,
      S.listenConnectionOffers,
      { sequenceNumberStart: 0n },
      h.now(),
    );
    await ok.send({ request: { $case: "init", value: init } });
    const stream = ok.responses[Symbol.asyncIterator]();
    for (;;) {
      const next = await stream.next();
      if (next.value?.event?.$case === "empty") break;
    }
    await ok.send({ request: { $case: "ack", value: { upToSequenceNumber: 500n } } });
    await expect(stream.next()).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
  });
});
