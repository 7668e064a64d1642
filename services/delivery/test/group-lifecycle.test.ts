import type * as grpc from "@grpc/grpc-js";
import { encryptMessage, processIncoming, removeMembers, updateOwnLeaf } from "@phoenix/mls";
import { delivery, errorDetailFromMetadata } from "@phoenix/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeOf, Harness, type Member, TestGroup } from "./support/harness.js";

const text = new TextEncoder();

describe("DS group life cycle against Postgres and NATS", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await Harness.start();
  });
  afterAll(async () => {
    await h?.stop();
  });

  it("creates a group, adds two users with three clients, delivers messages and enforces the rules", async () => {
    const alice = await h.user("alice").client();
    const bob = h.user("bob");
    const carol = h.user("carol");
    const bob1 = await bob.client("bob1");
    const bob2 = await bob.client("bob2");
    const carol1 = await carol.client("carol1");
    const g = await TestGroup.create(h, alice);

    // Add two users (three clients) in one commit: the commit goes to nobody (alice is alone),
    // each added client receives exactly one WelcomeBundle.
    const added = await g.add(alice, [bob1, bob2, carol1]);
    expect(added.epoch).toBe(1n);
    await h.waitForFanOuts(3);
    for (const m of [bob1, bob2, carol1]) {
      const inbox = h.inbox(m);
      expect(inbox).toHaveLength(1);
      expect(inbox[0]?.content?.$case).toBe("welcomeBundle");
    }
    expect(h.inbox(alice)).toHaveLength(0);

    // Every member decrypts an application message; the sender never receives its own.
    const sent = await encryptMessage(bob1.mls(), h.cs, text.encode("hello group"));
    bob1.state = sent.newState;
    await g.send(bob1, sent.message);
    await h.waitForFanOuts(4);
    expect(h.inbox(bob1)).toHaveLength(1);
    for (const m of [alice, bob2, carol1]) {
      const payload = h.inbox(m).at(-1);
      if (payload?.content?.$case !== "mlsMessage") throw new Error("expected an MLS message");
      const res = await processIncoming(m.mls(), h.cs, payload.content.value);
      if (res.kind !== "application") throw new Error("expected an application message");
      expect(new TextDecoder().decode(res.plaintext)).toBe("hello group");
      m.state = res.newState;
    }

    // A non-admin (bob) may not remove another user.
    const byBob = await removeMembers(bob1.mls(), h.cs, [carol1.leaf]);
    const refused = g.operation(bob1, byBob.commit, byBob.groupInfo);
    expect(await codeOf(refused)).toBe("PERMISSION_DENIED");

    // Removing only one of bob's two clients is refused: users leave with all their clients.
    const partial = await removeMembers(alice.mls(), h.cs, [bob1.leaf]);
    expect(await codeOf(g.operation(alice, partial.commit, partial.groupInfo))).toBe("INVALID_ARGUMENT");

    // Self-update by carol; then alice removes bob (both clients).
    const update = await updateOwnLeaf(carol1.mls(), h.cs);
    const updated = await g.operation(carol1, update.commit, update.groupInfo);
    expect(updated.epoch).toBe(2n);
    await g.processByOthers(carol1, update.commit);
    carol1.state = update.newState;

    const removal = await removeMembers(alice.mls(), h.cs, [bob1.leaf, bob2.leaf]);
    const removed = await g.operation(alice, removal.commit, removal.groupInfo);
    expect(removed.epoch).toBe(3n);
    await g.processByOthers(alice, removal.commit);
    alice.state = removal.newState;
    expect(g.members.map((m) => m.name).sort()).toEqual(["alice", "carol1"]);
    // The removal commit reaches carol and both removed clients, not alice.
    // 3 Welcome bundles, the message, carol's update, then the removal: 6 fan-outs in commit order.
    await h.waitForFanOuts(6);
    const last = h.fanOuts.at(-1);
    expect(last?.recipients).toHaveLength(3);
  });

  it("lets exactly one of two commits for the same epoch win", async () => {
    const a = await h.user("a").client();
    const b = await h.user("b").client();
    const g = await TestGroup.create(h, a);
    await g.add(a, [b]);
    const ca = await updateOwnLeaf(a.mls(), h.cs);
    const cb = await updateOwnLeaf(b.mls(), h.cs);
    const results = await Promise.allSettled([
      g.operation(a, ca.commit, ca.groupInfo),
      g.operation(b, cb.commit, cb.groupInfo),
    ]);
    const ok = results.filter((r) => r.status === "fulfilled");
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    expect(ok).toHaveLength(1);
    expect(failed).toHaveLength(1);
    const err = failed[0]?.reason as grpc.ServiceError;
    const detail = errorDetailFromMetadata(err.metadata);
    expect(detail?.detail?.$case).toBe("wrongEpoch");
    if (detail?.detail?.$case === "wrongEpoch") expect(detail.detail.value.currentEpoch).toBe(2n);
  });

  it("refuses a wrong EAR key, a foreign signature and a replayed request without changing state", async () => {
    const a = await h.user("a").client();
    const b = await h.user("b").client();
    const g = await TestGroup.create(h, a);
    await g.add(a, [b]);
    const c = await updateOwnLeaf(a.mls(), h.cs);
    const tbs: delivery.GroupOperationTbs = {
      header: h.header("phoenix.delivery.v1.DeliveryService/GroupOperation", {
        $case: "leafIndex",
        value: a.leaf,
      }),
      groupId: g.groupId,
      commit: c.commit,
      groupInfo: c.groupInfo,
      addedClients: undefined,
    };
    const signed = await h.sign(delivery.GroupOperationTbs, tbs, a.signingKey);
    const wrongKey = new Uint8Array(32).fill(7);
    expect(await codeOf(callOp(h, { signed, groupStateEarKey: wrongKey }))).toBe("UNAUTHENTICATED");
    const forged = await h.sign(delivery.GroupOperationTbs, tbs, b.signingKey);
    expect(await codeOf(callOp(h, { signed: forged, groupStateEarKey: g.earKey }))).toBe("UNAUTHENTICATED");
    expect(await codeOf(callOp(h, { signed, groupStateEarKey: g.earKey }))).toBe("OK");
    expect(await codeOf(callOp(h, { signed, groupStateEarKey: g.earKey }))).toBe("UNAUTHENTICATED");
  });
});

function callOp(h: Harness, req: delivery.GroupOperationRequest): Promise<unknown> {
  return new Promise((resolve, reject) =>
    h.client.groupOperation(req, (e, r) => (e ? reject(e) : resolve(r))),
  );
}

export type { Member };
