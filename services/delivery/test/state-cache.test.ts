// The DS's in-memory cache of decoded group state (issue #16; docs/security.md, "In-memory
// group-state cache") must never serve a request that does not hold the group's EAR key, never
// serve a state another replica has replaced, and must let go of states nobody uses.
import * as grpc from "@grpc/grpc-js";
import { encryptMessage, updateOwnLeaf } from "@phoenix/mls";
import { common, delivery, errorDetailFromMetadata, rpcLabel } from "@phoenix/proto";
import { eventually } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, type DeliveryInstance, Harness, type Member, Service, TestGroup } from "./support/harness.js";

const { ErrorReason } = common;

async function reason(p: Promise<unknown>): Promise<[string, common.ErrorReason | undefined]> {
  try {
    await p;
    return ["OK", undefined];
  } catch (e) {
    const error = e as grpc.ServiceError;
    return [grpc.status[error.code] ?? "?", errorDetailFromMetadata(error.metadata)?.reason];
  }
}

describe("the DS's group-state cache", () => {
  let h: Harness;
  let replica: DeliveryInstance;
  let replicaClient: delivery.DeliveryServiceClient;
  const cacheOf = () => {
    const service = h.running?.service;
    if (service === undefined) throw new Error("no DS");
    return service.ctx.stateCache;
  };

  beforeAll(async () => {
    h = await Harness.start();
    // On the replica, idle entries leave after 300 ms (default one minute).
    replica = await h.startInstance({ env: { DS_STATE_CACHE_IDLE: "300ms" } });
    replicaClient = new delivery.DeliveryServiceClient(
      `127.0.0.1:${replica.port}`,
      grpc.credentials.createInsecure(),
    );
  });
  afterAll(async () => {
    replicaClient?.close();
    await replica?.stop();
    await h?.stop();
  });

  async function send(g: TestGroup, by: Member, earKey = g.earKey): Promise<delivery.SendMessageResponse> {
    const sent = await encryptMessage(by.mls(), h.cs, new TextEncoder().encode("hi"));
    by.state = sent.newState;
    const request = await g.sendRequest(by, sent.message, earKey);
    return call((d) => h.client.sendMessage(request, d));
  }

  it("refuses a request without the group's key although the state is cached", async () => {
    const alice = await h.user("alice").client();
    const bob = await h.user("bob").client();
    const g = await TestGroup.create(h, alice);
    await g.add(alice, [bob]);
    await send(g, alice);
    expect(cacheOf().size).toBeGreaterThan(0);
    const wrong = new Uint8Array(32).fill(9);
    expect(await reason(send(g, bob, wrong))).toEqual([
      "UNAUTHENTICATED",
      ErrorReason.ERROR_REASON_WRONG_EAR_KEY,
    ]);
    // The right key still works (the refusal left the cache as it was).
    await send(g, bob);
  });

  it("never uses a state another replica replaced", async () => {
    const alice = await h.user("alice2").client();
    const bob = await h.user("bob2").client();
    const g = await TestGroup.create(h, alice);
    await g.add(alice, [bob]);
    await send(g, alice);
    const cached = cacheOf().lookup(g.groupId.uuid, cacheOf().keyTag(g.earKey));
    expect(cached?.base.epoch).toBe(1n);

    // Bob commits through the other replica: the first DS's copy is now one epoch behind.
    const update = await updateOwnLeaf(bob.mls(), h.cs);
    const tbs: delivery.GroupOperationTbs = {
      header: h.header(rpcLabel(Service.groupOperation), { $case: "leafIndex", value: bob.leaf }),
      groupId: g.groupId,
      commit: update.commit,
      groupInfo: update.groupInfo,
      addedClients: undefined,
    };
    const signed = await h.sign(delivery.GroupOperationTbs, tbs, bob.signingKey);
    const res = await call<delivery.GroupOperationResponse>((d) =>
      replicaClient.groupOperation({ signed, groupStateEarKey: g.earKey, newGroupStateEarKey: undefined }, d),
    );
    await g.processByOthers(bob, update.commit);
    bob.state = update.newState;

    // A message of the new epoch is accepted by the first DS, and a commit on top of it too:
    // both need the state the replica wrote.
    await send(g, alice);
    const next = await updateOwnLeaf(alice.mls(), h.cs);
    const after = await g.operation(alice, next.commit, next.groupInfo);
    expect(after.epoch).toBe(res.epoch + 1n);
  });

  it("lets go of states idle for DS_STATE_CACHE_IDLE without further requests", async () => {
    const alice = await h.user("alice3").client();
    const g = await TestGroup.create(h, alice);
    const tbs: delivery.ExternalCommitInfoTbs = {
      header: h.header(rpcLabel(Service.externalCommitInfo), { $case: "leafIndex", value: alice.leaf }),
      groupId: g.groupId,
    };
    const signed = await h.sign(delivery.ExternalCommitInfoTbs, tbs, alice.signingKey);
    await call((d) => replicaClient.externalCommitInfo({ signed, groupStateEarKey: g.earKey }, d));
    const cache = replica.service.ctx.stateCache;
    expect(cache.lookup(g.groupId.uuid, cache.keyTag(g.earKey))).toBeDefined();
    await eventually(async () => cache.size === 0, { message: "the cache to empty" });
    expect(cache.heldBytes).toBe(0);
  });
});
