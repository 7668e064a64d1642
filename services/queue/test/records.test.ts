import { status } from "@grpc/grpc-js";
import { randomBytes, SigningKey, toHex } from "@phoenix/crypto";
import { common, errorDetailFromMetadata, queue, requestHeader, rpcLabel, signTbs } from "@phoenix/proto";
import { callFailure } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Harness } from "./support/harness.js";

let h: Harness;
let clockOffsetMs = 0;
beforeAll(async () => {
  h = await Harness.start({ config: { QS_MAX_CLIENTS_PER_USER: 3 }, now: () => Date.now() + clockOffsetMs });
});
afterAll(async () => {
  await h?.stop();
});

describe("QS keys", () => {
  it("serves one current queue-config key and the verifying key", async () => {
    const keys = await h.client.getQueueConfigEncryptionKey({});
    expect(keys.keys).toHaveLength(1);
    expect(keys.keys[0]?.current).toBe(true);
    expect(keys.keys[0]?.publicKey).toHaveLength(32);
    const verifying = await h.client.getVerifyingKey({});
    expect(verifying.keys).toHaveLength(1);
    expect(verifying.keys[0]?.publicKey).toHaveLength(32);
  });

  it("keeps the keys across a restart and keeps the old key listed after a rotation", async () => {
    const before = await h.client.getQueueConfigEncryptionKey({});
    await h.stopService();
    await h.startService();
    const after = await h.client.getQueueConfigEncryptionKey({});
    expect(after.keys.map((k) => k.publicKey)).toEqual(before.keys.map((k) => k.publicKey));

    await h.service.refreshKeys(true);
    const rotated = await h.client.getQueueConfigEncryptionKey({});
    expect(rotated.keys).toHaveLength(2);
    const current = rotated.keys.filter((k) => k.current);
    expect(current).toHaveLength(1);
    expect(current[0]?.publicKey).not.toEqual(before.keys[0]?.publicKey);
    const old = rotated.keys.find((k) => !k.current);
    expect(old?.publicKey).toEqual(before.keys[0]?.publicKey);
    expect(old?.notAfter?.getTime()).toBeGreaterThan(Date.now());
  });
});

describe("user and client records", () => {
  it("creates a user whose first queue message is the ratchet Init", async () => {
    const alice = await h.newUser();
    expect(alice.clientId).toHaveLength(16);
    const res = await alice.dequeue(0n);
    expect(res.messages.map((m) => m.sequenceNumber)).toEqual([0n]);
    alice.decrypt(res.messages);
    expect(alice.receiver?.nextSequenceNumber).toBe(1);
  });

  it("returns the user record with its clients and friendship token", async () => {
    const alice = await h.newUser();
    const second = await alice.addClient();
    const res = await h.client.getUser({ signed: await alice.userSigned(queue.GetUserTbs, "getUser", {}) });
    expect(toHex(res.friendshipToken)).toBe(toHex(alice.user.friendshipToken));
    expect(toHex(res.userRecordAuthKey)).toBe(toHex(alice.user.userKey.publicKey));
    expect(res.clients.map((c) => toHex(c.qsClientId)).sort()).toEqual(
      [alice.clientId, second.clientId].map(toHex).sort(),
    );
    expect(res.clients.every((c) => c.lastActiveAt !== undefined && c.lastActiveAt.getUTCDate() === 1)).toBe(
      true,
    );
  });

  it("refuses clients beyond the configured maximum with RESOURCE_EXHAUSTED", async () => {
    const alice = await h.newUser();
    await alice.addClient();
    await alice.addClient();
    const err = await callFailure(alice.addClient());
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(errorDetailFromMetadata(err.metadata)?.reason).toBe(common.ErrorReason.ERROR_REASON_QUOTA);
  });

  it("deletes the user record with its last client", async () => {
    const alice = await h.newUser();
    const second = await alice.addClient();
    await h.client.deleteClient({ signed: await alice.signed(queue.DeleteClientTbs, "deleteClient", {}) });
    expect((await second.dequeue(0n)).messages).toHaveLength(1);
    await h.client.deleteClient({ signed: await second.signed(queue.DeleteClientTbs, "deleteClient", {}) });
    const err = await callFailure(
      h.client.getUser({ signed: await alice.userSigned(queue.GetUserTbs, "getUser", {}) }),
    );
    expect(err.code).toBe(status.UNAUTHENTICATED);
  });

  it("rotates the friendship token: the old one stops working at once", async () => {
    const alice = await h.newUser();
    const oldToken = alice.user.friendshipToken;
    const newToken = randomBytes(32);
    const newKey = SigningKey.generate();
    await h.client.updateUser({
      signed: await alice.userSigned(queue.UpdateUserTbs, "updateUser", {
        userRecordAuthKey: newKey.publicKey,
        friendshipToken: newToken,
      }),
    });
    alice.user.userKey = newKey;
    alice.user.friendshipToken = newToken;
    const res = await h.client.getUser({ signed: await alice.userSigned(queue.GetUserTbs, "getUser", {}) });
    expect(toHex(res.friendshipToken)).toBe(toHex(newToken));
    const err = await callFailure(h.client.fetchAddPackages({ friendshipToken: oldToken, domain: "" }));
    expect(err.code).toBe(status.NOT_FOUND);
  });

  it("refuses a bad signature, a wrong label, a stale timestamp and a replay with UNAUTHENTICATED", async () => {
    const alice = await h.newUser();
    const signed = await alice.signed(queue.DequeueTbs, "dequeue", {
      sequenceNumberStart: 0n,
      maxMessages: 0,
    });
    const tampered = { ...signed, signature: signed.signature.map((b, i) => (i === 0 ? b ^ 1 : b)) };
    const reasons: common.ErrorReason[] = [];
    for (const attempt of [
      () => h.client.dequeue({ signed: tampered }),
      async () =>
        h.client.dequeue({
          signed: await alice.signed(queue.DequeueTbs, "getUser", {
            sequenceNumberStart: 0n,
            maxMessages: 0,
          }),
        }),
      async () =>
        h.client.dequeue({
          signed: await signTbs(
            queue.DequeueTbs,
            {
              header: requestHeader(
                rpcLabel(queue.QueueServiceService.dequeue),
                { $case: "qsClientId", value: alice.clientId },
                new Date(Date.now() - 3600_000),
              ),
              sequenceNumberStart: 0n,
              maxMessages: 0,
            },
            (label, bytes) => alice.clientKey.sign(label, bytes),
          ),
        }),
    ]) {
      const err = await callFailure(attempt());
      expect(err.code).toBe(status.UNAUTHENTICATED);
      reasons.push(errorDetailFromMetadata(err.metadata)?.reason ?? 0);
    }
    await h.client.dequeue({ signed });
    const replay = await callFailure(h.client.dequeue({ signed }));
    expect(replay.code).toBe(status.UNAUTHENTICATED);
    reasons.push(errorDetailFromMetadata(replay.metadata)?.reason ?? 0);
    expect(reasons).toEqual([
      common.ErrorReason.ERROR_REASON_BAD_SIGNATURE,
      common.ErrorReason.ERROR_REASON_WRONG_LABEL,
      common.ErrorReason.ERROR_REASON_STALE_TIMESTAMP,
      common.ErrorReason.ERROR_REASON_REPLAYED_REQUEST,
    ]);
  });

  it("expires client records inactive beyond the limit, with their user records", async () => {
    const alice = await h.newUser();
    const bob = await h.newUser();
    clockOffsetMs = 120 * 86_400_000;
    try {
      // Bob stays active (his request refreshes the activity month); Alice does not.
      bob.clock = () => new Date(Date.now() + clockOffsetMs);
      await bob.dequeue(0n);
      const swept = await h.service.sweep();
      expect(swept.clients).toBeGreaterThanOrEqual(1);
    } finally {
      clockOffsetMs = 0;
      bob.clock = () => new Date();
    }
    const err = await callFailure(
      h.client.getUser({ signed: await alice.userSigned(queue.GetUserTbs, "getUser", {}) }),
    );
    expect(err.code).toBe(status.UNAUTHENTICATED);
    expect((await bob.dequeue(0n)).messages).toHaveLength(1);
  });

  it("refuses a client request signed with another client's key", async () => {
    const alice = await h.newUser();
    const bob = await h.newUser();
    const forged = await signTbs(
      queue.DequeueTbs,
      {
        header: requestHeader(rpcLabel(queue.QueueServiceService.dequeue), {
          $case: "qsClientId",
          value: alice.clientId,
        }),
        sequenceNumberStart: 0n,
        maxMessages: 0,
      },
      (label, bytes) => bob.clientKey.sign(label, bytes),
    );
    expect((await callFailure(h.client.dequeue({ signed: forged }))).code).toBe(status.UNAUTHENTICATED);
  });
});
