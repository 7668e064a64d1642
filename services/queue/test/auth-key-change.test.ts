import { status } from "@grpc/grpc-js";
import { SigningKey, toHex } from "@phoenix/crypto";
import { events, queue } from "@phoenix/proto";
import { callFailure, eventually } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localGroup, publishFanOut, StreamCollector } from "./support/fan-out.js";
import { Harness } from "./support/harness.js";
import type { TestClient } from "./support/test-client.js";

const HOUR = 3600_000;
let h: Harness;
let deleted: StreamCollector;
let clockOffsetMs = 0;
beforeAll(async () => {
  h = await Harness.start({ config: { QS_AUTH_KEY_GRACE: HOUR }, now: () => Date.now() + clockOffsetMs });
  deleted = await StreamCollector.start(h, h.streams.queueDeleted);
});
afterAll(async () => {
  await deleted?.stop();
  await h?.stop();
});

async function received(client: TestClient, count: number): Promise<string[]> {
  return eventually(async () => {
    await client.drain(BigInt(client.receiver?.nextSequenceNumber ?? 0));
    return client.received.length >= count ? client.received.map(toHex) : undefined;
  });
}

/** UpdateClient to a fresh auth key (same queue key); the client signs with it from now on. */
async function changeAuthKey(client: TestClient): Promise<SigningKey> {
  const previous = client.clientKey;
  const next = SigningKey.generate();
  await h.client.updateClient({
    signed: await client.signed(queue.UpdateClientTbs, "updateClient", {
      clientRecordAuthKey: next.publicKey,
      queueEncryptionKey: client.queueKeyPair.publicKey.bytes,
    }),
  });
  client.clientKey = next;
  return previous;
}

describe("auth-key change vs sealed queue configs", () => {
  it("keeps delivering to configs sealed before the change during the grace period, then reports them deleted", async () => {
    const alice = await h.newUser();
    alice.clock = () => new Date(Date.now() + clockOffsetMs);
    const sealedBefore = alice.qsReference();
    const previous = await changeAuthKey(alice);
    const sealedAfter = alice.qsReference();

    // The config a DS group still holds (sealed with the old key) keeps working…
    const first = await publishFanOut(h, { recipients: [sealedBefore] });
    expect(await received(alice, 1)).toEqual([toHex(first.payload)]);
    const second = await publishFanOut(h, { recipients: [sealedAfter] });
    expect(await received(alice, 2)).toEqual([toHex(first.payload), toHex(second.payload)]);

    // …but the old key no longer signs requests.
    const stale = alice.clientKey;
    alice.clientKey = previous;
    const refused = await callFailure(alice.dequeue(0n));
    expect(refused.code).toBe(status.UNAUTHENTICATED);
    alice.clientKey = stale;

    // Past the grace period the old seal fails: the DS hears the queue is gone for that config.
    clockOffsetMs = 2 * HOUR;
    const group = localGroup();
    const late = await publishFanOut(h, { groupId: group, recipients: [sealedBefore, sealedAfter] });
    expect(await received(alice, 3)).toEqual([
      toHex(first.payload),
      toHex(second.payload),
      toHex(late.payload),
    ]);
    const report = await eventually(async () =>
      deleted.messages
        .map((m) => events.QueueDeleted.decode(m.data))
        .find((r) => toHex(r.groupId?.uuid ?? new Uint8Array()) === toHex(group.uuid)),
    );
    expect(toHex(report.recipient?.sealedQueueConfig ?? new Uint8Array())).toBe(
      toHex(sealedBefore.sealedQueueConfig),
    );
    const swept = await h.service.sweep();
    expect(swept.clients).toBe(0);
  });
});
