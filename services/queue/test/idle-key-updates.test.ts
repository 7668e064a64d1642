import { decodeQueueMessage, HpkeKeyPair, QueueRatchetReceiver, toHex } from "@phoenix/crypto";
import { eventually } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { publishFanOut } from "./support/fan-out.js";
import { Harness } from "./support/harness.js";

const DAY = 86_400_000;
let h: Harness;
let clockOffsetMs = 0;
const clock = () => new Date(Date.now() + clockOffsetMs);
beforeAll(async () => {
  h = await Harness.start({
    config: { QS_RATCHET_UPDATE_MESSAGES: 1000, QS_RATCHET_UPDATE_INTERVAL: DAY },
    now: () => clock().getTime(),
  });
});
afterAll(async () => {
  await h?.stop();
});

describe("time-based key updates for idle queues", () => {
  it("gives a queue idle for longer than the interval a key update a leaked ratchet state cannot follow", async () => {
    const alice = await h.newUser();
    alice.clock = clock;
    await alice.drain(); // the Init: alice's receiver starts
    const qs = h.service;
    expect(await qs.updateIdleQueues()).toBe(0); // fresh queue: nothing due

    // An attacker copies the queue's ratchet state now (but not the queue's HPKE private key).
    const leaked = QueueRatchetReceiver.fromBytes((alice.receiver as QueueRatchetReceiver).toBytes());
    clockOffsetMs = 2 * DAY;
    expect(await qs.updateIdleQueues()).toBe(1);
    expect(await qs.updateIdleQueues()).toBe(0); // updated now: not due again yet

    const [update] = (await alice.dequeue(1n)).messages.map((m) => decodeQueueMessage(m.ciphertext));
    expect(update?.kind).toBe(2); // QueueMessageKind.Update, with no message sent to the queue
    expect(update?.sequenceNumber).toBe(1);

    const fanOut = await publishFanOut(h, { recipients: [alice.qsReference()] });
    const got = await eventually(async () => {
      await alice.drain(BigInt(alice.receiver?.nextSequenceNumber ?? 0));
      return alice.received.length >= 1 ? alice.received.map(toHex) : undefined;
    });
    expect(got).toEqual([toHex(fanOut.payload)]);
    const stolenKeys = HpkeKeyPair.generate();
    expect(() => leaked.decrypt(update as NonNullable<typeof update>, stolenKeys)).toThrow();
    clockOffsetMs = 0;
  });
});
