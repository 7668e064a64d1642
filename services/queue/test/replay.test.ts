import { type Metadata, status } from "@grpc/grpc-js";
import { HpkeKeyPair, randomBytes, SigningKey } from "@phoenix/crypto";
import { common, errorDetailFromMetadata, queue, requestHeader, rpcLabel, signTbs } from "@phoenix/proto";
import { createChannel, createServiceClient } from "@phoenix/runtime/grpc";
import { seenRequests } from "@phoenix/runtime/replay";
import { callFailure } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { qsBlocklist, qsUsers } from "../src/store/schema.js";
import { localGroup } from "./support/fan-out.js";
import { Harness, type QsClient, type QueueInstance } from "./support/harness.js";

let h: Harness;
let replica: QueueInstance;
let onReplica: QsClient;
let closeReplicaChannel: () => void;
let clockOffsetMs = 0;
beforeAll(async () => {
  h = await Harness.start({ config: { QS_MAX_BLOCKLIST: 1 }, now: () => Date.now() + clockOffsetMs });
  // A second QS instance on the same database: another replica behind the load balancer.
  replica = await h.startInstance({ hooks: { consumeFanOuts: false } });
  const channel = createChannel(`127.0.0.1:${replica.port}`);
  onReplica = createServiceClient(queue.QueueServiceService, channel);
  closeReplicaChannel = () => channel.close();
});
afterAll(async () => {
  closeReplicaChannel?.();
  await replica?.stop();
  await h?.stop();
});

function expectReplayRefused(err: { code: number; metadata: Metadata }) {
  expect(err.code).toBe(status.UNAUTHENTICATED);
  expect(errorDetailFromMetadata(err.metadata)?.reason).toBe(
    common.ErrorReason.ERROR_REASON_REPLAYED_REQUEST,
  );
}

describe("replays across replicas", () => {
  it("refuses a request replayed to a second instance, and changes nothing", async () => {
    const alice = await h.newUser();
    const block = await alice.signed(queue.BlockGroupTbs, "blockGroup", { groupId: localGroup() });
    await h.client.blockGroup({ signed: block });
    await h.client.unblockGroup({
      signed: await alice.signed(queue.UnblockGroupTbs, "unblockGroup", {
        groupId: queue.BlockGroupTbs.decode(block.tbs).groupId,
      }),
    });
    expectReplayRefused(await callFailure(onReplica.blockGroup({ signed: block })));
    expect(await h.db.db.select().from(qsBlocklist)).toEqual([]);
  });

  it("refuses a CreateUser replayed to a second instance: one user record", async () => {
    const before = (await h.db.db.select({ id: qsUsers.userId }).from(qsUsers)).length;
    const userKey = SigningKey.generate();
    const signed = await signTbs(
      queue.CreateUserTbs,
      {
        header: requestHeader(rpcLabel(queue.QueueServiceService.createUser), undefined),
        userRecordAuthKey: userKey.publicKey,
        friendshipToken: randomBytes(32),
        clientRecordAuthKey: SigningKey.generate().publicKey,
        queueEncryptionKey: HpkeKeyPair.generate().publicKey.bytes,
        sealedPushToken: new Uint8Array(0),
      },
      (label, bytes) => userKey.sign(label, bytes),
    );
    await h.client.createUser({ signed });
    expectReplayRefused(await callFailure(onReplica.createUser({ signed })));
    expect((await h.db.db.select({ id: qsUsers.userId }).from(qsUsers)).length).toBe(before + 1);
  });

  it("lets a request whose transaction rolled back be sent again as it is", async () => {
    const alice = await h.newUser();
    const first = localGroup();
    await h.client.blockGroup({
      signed: await alice.signed(queue.BlockGroupTbs, "blockGroup", { groupId: first }),
    });
    const second = await alice.signed(queue.BlockGroupTbs, "blockGroup", { groupId: localGroup() });
    expect((await callFailure(h.client.blockGroup({ signed: second }))).code).toBe(status.RESOURCE_EXHAUSTED);
    await h.client.unblockGroup({
      signed: await alice.signed(queue.UnblockGroupTbs, "unblockGroup", { groupId: first }),
    });
    await onReplica.blockGroup({ signed: second });
    expectReplayRefused(await callFailure(h.client.blockGroup({ signed: second })));
  });

  it("forgets request ids once their timestamps are outside the window", async () => {
    const alice = await h.newUser();
    const dequeue = await alice.signed(queue.DequeueTbs, "dequeue", {
      sequenceNumberStart: 0n,
      maxMessages: 0,
    });
    await h.client.dequeue({ signed: dequeue });
    expect((await h.db.db.select().from(seenRequests)).length).toBeGreaterThan(0);
    clockOffsetMs = 3600_000;
    await h.service.sweep();
    expect(await h.db.db.select().from(seenRequests)).toEqual([]);
    // The forgotten request is still refused: its timestamp is stale now.
    const stale = await callFailure(onReplica.dequeue({ signed: dequeue }));
    expect(errorDetailFromMetadata(stale.metadata)?.reason).toBe(
      common.ErrorReason.ERROR_REASON_STALE_TIMESTAMP,
    );
    clockOffsetMs = 0;
  });
});
