// A signed request is accepted once across all replicas: request ids are recorded in the DS
// database with the request, until the timestamp window would refuse the request anyway.
import * as grpc from "@grpc/grpc-js";
import { encryptMessage, removeMembers } from "@phoenix/mls";
import { common, delivery, errorDetailFromMetadata, rpcLabel } from "@phoenix/proto";
import { outbox } from "@phoenix/runtime/outbox";
import { seenRequests } from "@phoenix/runtime/replay";
import { eventually } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, type DeliveryInstance, Harness, Service, TestGroup } from "./support/harness.js";

const { ErrorReason } = common;

describe("replays across DS replicas", () => {
  let h: Harness;
  let offset = 0;
  let replica: DeliveryInstance;
  let replicaClient: delivery.DeliveryServiceClient;

  beforeAll(async () => {
    h = await Harness.start({ now: () => Date.now() + offset });
    // A second DS process on the same database and bus (in-process here: what matters is that
    // it shares nothing with the first but the database).
    replica = await h.startInstance({ now: () => Date.now() + offset });
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

  async function reason(p: Promise<unknown>): Promise<[string, common.ErrorReason | undefined]> {
    try {
      await p;
      return ["OK", undefined];
    } catch (e) {
      const error = e as grpc.ServiceError;
      return [grpc.status[error.code] ?? "?", errorDetailFromMetadata(error.metadata)?.reason];
    }
  }

  it("refuses a SendMessage replayed to another replica; the message is delivered once", async () => {
    const alice = await h.user("alice").client();
    const bob = await h.user("bob").client();
    const g = await TestGroup.create(h, alice);
    await g.add(alice, [bob]);
    const sent = await encryptMessage(alice.mls(), h.cs, new TextEncoder().encode("once"));
    alice.state = sent.newState;
    const tbs: delivery.SendMessageTbs = {
      header: h.header(rpcLabel(Service.sendMessage), { $case: "leafIndex", value: alice.leaf }),
      groupId: g.groupId,
      message: sent.message,
      suppressNotifications: false,
    };
    const request = {
      signed: await h.sign(delivery.SendMessageTbs, tbs, alice.signingKey),
      groupStateEarKey: g.earKey,
    };

    await call((d) => h.client.sendMessage(request, d));
    expect(await reason(call((d) => replicaClient.sendMessage(request, d)))).toEqual([
      "UNAUTHENTICATED",
      ErrorReason.ERROR_REASON_REPLAYED_REQUEST,
    ]);
    // Once the outbox is empty everything committed was published: bob got the message once.
    await eventually(async () => (await h.db.db.select().from(outbox)).length === 0, {
      message: "the outbox to drain",
    });
    await h.waitForPayload(bob, "mlsMessage");
    expect(h.inbox(bob).filter((p) => p.content?.$case === "mlsMessage")).toHaveLength(1);

    // A state change replayed to the other replica is refused the same way.
    const profile: delivery.UpdateProfileKeyTbs = {
      header: h.header(rpcLabel(Service.updateProfileKey), { $case: "leafIndex", value: bob.leaf }),
      groupId: g.groupId,
      encryptedUserProfileKey: new Uint8Array(40).fill(7),
    };
    const update = {
      signed: await h.sign(delivery.UpdateProfileKeyTbs, profile, bob.signingKey),
      groupStateEarKey: g.earKey,
    };
    await call((d) => replicaClient.updateProfileKey(update, d));
    expect(await reason(call((d) => h.client.updateProfileKey(update, d)))).toEqual([
      "UNAUTHENTICATED",
      ErrorReason.ERROR_REASON_REPLAYED_REQUEST,
    ]);

    // Past the window the ids are forgotten, and the timestamp check refuses the replay instead.
    offset = 6 * 60_000;
    try {
      const swept = await replica.service.sweep();
      expect(swept.requestIds).toBeGreaterThanOrEqual(2);
      expect(await h.db.db.select().from(seenRequests)).toHaveLength(0);
      expect(await reason(call((d) => replicaClient.sendMessage(request, d)))).toEqual([
        "UNAUTHENTICATED",
        ErrorReason.ERROR_REASON_STALE_TIMESTAMP,
      ]);
    } finally {
      offset = 0;
    }
  });

  it("answers a commit resent after it went through as replayed, although its epoch and EAR key are gone", async () => {
    // A committer whose answer was lost resends the identical request; by then the commit has
    // moved the group on and (a removal) rotated the EAR key, so the copy would be refused for
    // that. The replay answer tells the client its commit is the group's.
    const alice = await h.user("alice").client();
    const bob = await h.user("bob").client();
    const carol = await h.user("carol").client();
    const g = await TestGroup.create(h, alice);
    await g.add(alice, [bob, carol]);
    const rm = await removeMembers(alice.mls(), h.cs, [carol.leaf]);
    const tbs: delivery.GroupOperationTbs = {
      header: h.header(rpcLabel(Service.groupOperation), { $case: "leafIndex", value: alice.leaf }),
      groupId: g.groupId,
      commit: rm.commit,
      groupInfo: rm.groupInfo,
      addedClients: undefined,
    };
    const request = {
      signed: await h.sign(delivery.GroupOperationTbs, tbs, alice.signingKey),
      groupStateEarKey: g.earKey,
      newGroupStateEarKey: new Uint8Array(32).fill(9),
    };
    await call((d) => h.client.groupOperation(request, d));
    for (const client of [h.client, replicaClient])
      expect(await reason(call((d) => client.groupOperation(request, d)))).toEqual([
        "UNAUTHENTICATED",
        ErrorReason.ERROR_REASON_REPLAYED_REQUEST,
      ]);
    // A different request under the old key is still refused for the key, not as a replay.
    const other = await removeMembers(alice.mls(), h.cs, [bob.leaf]);
    const fresh = {
      signed: await h.sign(
        delivery.GroupOperationTbs,
        {
          ...tbs,
          header: h.header(rpcLabel(Service.groupOperation), { $case: "leafIndex", value: alice.leaf }),
          commit: other.commit,
          groupInfo: other.groupInfo,
        },
        alice.signingKey,
      ),
      groupStateEarKey: request.groupStateEarKey,
      newGroupStateEarKey: new Uint8Array(32).fill(10),
    };
    expect(await reason(call((d) => h.client.groupOperation(fresh, d)))).toEqual([
      "UNAUTHENTICATED",
      ErrorReason.ERROR_REASON_WRONG_EAR_KEY,
    ]);
  });
});
