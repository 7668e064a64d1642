import {
  decodeQueueMessage,
  HpkeKeyPair,
  QueueRatchetReceiver,
  randomBytes,
  SigningKey,
  sealQueueConfig,
  toHex,
} from "@phoenix/crypto";
import { events, queue } from "@phoenix/proto";
import { eventually } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localGroup, publishFanOut, StreamCollector } from "./support/fan-out.js";
import { DOMAIN, Harness } from "./support/harness.js";
import type { TestClient } from "./support/test-client.js";

let h: Harness;
let federation: StreamCollector;
let deleted: StreamCollector;
beforeAll(async () => {
  h = await Harness.start({
    config: { QS_RATCHET_UPDATE_MESSAGES: 4, QS_RATCHET_UPDATE_INTERVAL: 3600_000 },
  });
  federation = await StreamCollector.start(h, h.streams.federation);
  deleted = await StreamCollector.start(h, h.streams.queueDeleted);
});
afterAll(async () => {
  await federation?.stop();
  await deleted?.stop();
  await h?.stop();
});

/** Everything `client` can decrypt from its queue once `count` payloads arrived. */
async function received(client: TestClient, count: number): Promise<string[]> {
  return eventually(async () => {
    await client.drain(BigInt(client.receiver?.nextSequenceNumber ?? 0));
    return client.received.length >= count ? client.received.map(toHex) : undefined;
  });
}

describe("fan-out consumer", () => {
  it("delivers to three local queues and forwards the remote recipient to its domain", async () => {
    const [alice, bob, carol] = [await h.newUser(), await h.newUser(), await h.newUser()];
    const remote = {
      domain: "beta.example",
      sealedQueueConfig: sealQueueConfig({
        qsKey: HpkeKeyPair.generate().publicKey,
        domain: "beta.example",
        clientRecordId: randomBytes(16),
        recordKey: SigningKey.generate(),
      }),
    };
    const fanOut = await publishFanOut(h, {
      recipients: [alice.qsReference(), bob.qsReference(), carol.qsReference(), remote],
    });
    for (const client of [alice, bob, carol])
      expect(await received(client, 1)).toEqual([toHex(fanOut.payload)]);

    const forwarded = await eventually(async () =>
      federation.messages.find((m) => m.subject.endsWith("beta_example")),
    );
    expect(forwarded.subject).toBe(`${h.prefix}phoenix.federation.outbound.beta_example`);
    const envelope = events.FederationEnvelope.decode(forwarded.data);
    expect(envelope.sourceDomain).toBe(DOMAIN);
    expect(envelope.destinationDomain).toBe("beta.example");
    expect(envelope.content?.$case).toBe("fanOut");
    const inner = envelope.content?.$case === "fanOut" ? envelope.content.value : undefined;
    expect(inner?.recipients.map((r) => toHex(r.sealedQueueConfig))).toEqual([
      toHex(remote.sealedQueueConfig),
    ]);
    expect(toHex(inner?.payload ?? new Uint8Array())).toBe(toHex(fanOut.payload));
    expect(forwarded.id).toBe(toHex(envelope.envelopeId));
  });

  it("enqueues a redelivered fan-out only once", async () => {
    const alice = await h.newUser();
    const fanOut = await publishFanOut(h, { recipients: [alice.qsReference()] }, "first");
    await publishFanOut(h, { ...fanOut }, "second publish of the same fan-out");
    const marker = await publishFanOut(h, { recipients: [alice.qsReference()] });
    expect(await received(alice, 2)).toEqual([toHex(fanOut.payload), toHex(marker.payload)]);
    // Init at 0, the fan-out at 1, the marker at 2: no second copy took a sequence number, and
    // nothing follows the marker. (A drain from 2 deletes message 1, so the count is read from
    // the receiver, not from the queue.)
    expect(alice.receiver?.nextSequenceNumber).toBe(3);
    const after = await alice.dequeue(3n);
    expect(after.messages).toEqual([]);
    expect(after.remaining).toBe(0n);
  });

  it("reports a deleted or unknown queue to the DS and still delivers to the others", async () => {
    const alice = await h.newUser();
    const gone = await h.newUser();
    const goneRef = gone.qsReference();
    await h.client.deleteUser({ signed: await gone.userSigned(queue.DeleteUserTbs, "deleteUser", {}) });
    const garbage = { domain: DOMAIN, sealedQueueConfig: randomBytes(120) };
    const group = localGroup();
    const fanOut = await publishFanOut(h, {
      groupId: group,
      recipients: [goneRef, alice.qsReference(), garbage],
    });
    expect(await received(alice, 1)).toEqual([toHex(fanOut.payload)]);
    const reports = await eventually(async () => {
      const mine = deleted.messages
        .map((m) => events.QueueDeleted.decode(m.data))
        .filter((r) => toHex(r.groupId?.uuid ?? new Uint8Array()) === toHex(group.uuid));
      return mine.length === 2 ? mine : undefined;
    });
    expect(reports.map((r) => toHex(r.recipient?.sealedQueueConfig ?? new Uint8Array())).sort()).toEqual(
      [toHex(goneRef.sealedQueueConfig), toHex(garbage.sealedQueueConfig)].sort(),
    );
    expect(reports.every((r) => r.eventId.length === 16 && r.reportedAt !== undefined)).toBe(true);
  });

  it("drops fan-outs of a blocked group for that queue only, until unblocked", async () => {
    const alice = await h.newUser();
    const bob = await h.newUser();
    const group = localGroup();
    await h.client.blockGroup({
      signed: await alice.signed(queue.BlockGroupTbs, "blockGroup", { groupId: group }),
    });
    const blocked = await publishFanOut(h, {
      groupId: group,
      recipients: [alice.qsReference(), bob.qsReference()],
    });
    expect(await received(bob, 1)).toEqual([toHex(blocked.payload)]);
    const other = await publishFanOut(h, { recipients: [alice.qsReference()] });
    expect(await received(alice, 1)).toEqual([toHex(other.payload)]);
    await h.client.unblockGroup({
      signed: await alice.signed(queue.UnblockGroupTbs, "unblockGroup", { groupId: group }),
    });
    const again = await publishFanOut(h, { groupId: group, recipients: [alice.qsReference()] });
    expect(await received(alice, 2)).toEqual([toHex(other.payload), toHex(again.payload)]);
  });

  it("pages dequeue results and deletes what lies below the requested start", async () => {
    const alice = await h.newUser();
    const ref = alice.qsReference();
    const payloads: string[] = [];
    for (let i = 0; i < 6; i++) payloads.push(toHex((await publishFanOut(h, { recipients: [ref] })).payload));
    const next = await eventually(async () => {
      const res = await alice.dequeue(0n, 1);
      return res.remaining >= 6n ? res : undefined;
    });
    expect(next.messages.map((m) => m.sequenceNumber)).toEqual([0n]);
    const page = await alice.dequeue(2n, 3);
    expect(page.messages.map((m) => m.sequenceNumber)).toEqual([2n, 3n, 4n]);
    const total = Number(page.remaining) + 5;
    expect(total).toBeGreaterThanOrEqual(7); // 6 messages, Init, and a key update every 4
    const again = await alice.dequeue(0n);
    expect(again.messages[0]?.sequenceNumber).toBe(2n);
    expect(await alice.drain(0n).catch(() => undefined)).toBeUndefined(); // seq 0/1 are gone: no Init to start from
  });

  it("sends a key update to the new queue key after UpdateClient; the old key pair cannot follow", async () => {
    const alice = await h.newUser();
    const ref = alice.qsReference();
    const before = await publishFanOut(h, { recipients: [ref] });
    expect(await received(alice, 1)).toEqual([toHex(before.payload)]);
    const oldKeys = alice.queueKeyPair;
    const newKeys = HpkeKeyPair.generate();
    await h.client.updateClient({
      signed: await alice.signed(queue.UpdateClientTbs, "updateClient", {
        clientRecordAuthKey: alice.clientKey.publicKey,
        queueEncryptionKey: newKeys.publicKey.bytes,
      }),
    });
    const leaked = QueueRatchetReceiver.fromBytes((alice.receiver as QueueRatchetReceiver).toBytes());
    alice.queueKeyPair = newKeys;
    const after = await publishFanOut(h, { recipients: [ref] });
    expect(await received(alice, 2)).toEqual([toHex(before.payload), toHex(after.payload)]);
    const [update] = (await alice.dequeue(2n)).messages.map((m) => decodeQueueMessage(m.ciphertext));
    expect(update?.kind).toBe(2);
    expect(() => leaked.decrypt(update as NonNullable<typeof update>, oldKeys)).toThrow();
  });

  it("updates the ratchet key every N messages: the client follows, a leaked ratchet state does not", async () => {
    const alice = await h.newUser();
    const ref = alice.qsReference();
    const first = await publishFanOut(h, { recipients: [ref] });
    expect(await received(alice, 1)).toEqual([toHex(first.payload)]);
    // An attacker copies the queue's ratchet state now (but not the queue's HPKE private key).
    const leaked = QueueRatchetReceiver.fromBytes((alice.receiver as QueueRatchetReceiver).toBytes());
    const later: string[] = [toHex(first.payload)];
    for (let i = 0; i < 5; i++) later.push(toHex((await publishFanOut(h, { recipients: [ref] })).payload));
    expect(await received(alice, 6)).toEqual(later);

    const messages = (await alice.dequeue(2n)).messages.map((m) => decodeQueueMessage(m.ciphertext));
    const kinds = messages.map((m) => m.kind);
    expect(kinds).toContain(2); // a key update (QueueMessageKind.Update) among them
    const stolenKeys = HpkeKeyPair.generate();
    let readable = 0;
    for (const m of messages) {
      try {
        if (leaked.decrypt(m, stolenKeys).kind === "message") readable++;
      } catch {
        break;
      }
    }
    // Messages before the key update are readable with the leaked state, none after it.
    const updateIndex = kinds.indexOf(2);
    expect(readable).toBe(updateIndex);
    expect(readable).toBeLessThan(5);
  });

  it("still opens configs sealed to a rotated-out key, and new ones sealed to the current key", async () => {
    const alice = await h.newUser();
    const oldRef = alice.qsReference();
    await h.service.refreshKeys(true);
    const keys = await h.client.getQueueConfigEncryptionKey({});
    const current = keys.keys.find((k) => k.current);
    expect(toHex(current?.publicKey ?? new Uint8Array())).not.toBe(toHex(alice.qsKey.bytes));
    const bob = await h.newUser();
    const first = await publishFanOut(h, { recipients: [oldRef, bob.qsReference()] });
    expect(await received(alice, 1)).toEqual([toHex(first.payload)]);
    expect(await received(bob, 1)).toEqual([toHex(first.payload)]);
  });
});
