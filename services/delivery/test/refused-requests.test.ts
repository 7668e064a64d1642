// Every RPC that takes MLS content, an EAR key or a group id refuses bad ones with a clean status
// and leaves every stored group row byte for byte as it was (a rewrite would show: the state is
// re-encrypted under a fresh nonce on every write).
import { randomBytes } from "node:crypto";
import type * as grpc from "@grpc/grpc-js";
import { encryptMessage, proposeSelfRemove, updateOwnLeaf } from "@phoenix/mls";
import { common, delivery, errorDetailFromMetadata, rpcLabel } from "@phoenix/proto";
import { makeKeyPackageRef } from "ts-mls/keyPackage.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { groups } from "../src/store/schema.js";
import { call, codeOf, DOMAIN, Harness, type Member, Service, TestGroup } from "./support/harness.js";

const { ErrorReason } = common;

type Rpc =
  | "groupOperation"
  | "joinConnectionGroup"
  | "resync"
  | "selfRemove"
  | "sendMessage"
  | "deleteGroup"
  | "welcomeInfo"
  | "externalCommitInfo"
  | "connectionGroupInfo"
  | "updateQueueInfo"
  | "updateProfileKey";

const MLS_RPCS: readonly Rpc[] = [
  "groupOperation",
  "joinConnectionGroup",
  "resync",
  "selfRemove",
  "sendMessage",
  "deleteGroup",
];
const ALL_RPCS: readonly Rpc[] = [
  ...MLS_RPCS,
  "welcomeInfo",
  "externalCommitInfo",
  "connectionGroupInfo",
  "updateQueueInfo",
  "updateProfileKey",
];

interface Target {
  group: TestGroup;
  /** Signs requests that name a member leaf (by the MLS sender's leaf index where it matters). */
  signer: Member;
}

interface Variant {
  groupId?: common.QualifiedGroupId;
  earKey?: Uint8Array;
  mls?: Uint8Array;
}

describe("refused requests leave the stored group untouched", () => {
  let h: Harness;
  let g1: TestGroup;
  let g2: TestGroup;
  let conn: TestGroup;
  const m: Record<string, Member> = {};
  /** Valid MLS content of g1 for each MLS RPC (not applied). */
  const g1Mls: Partial<Record<Rpc, Uint8Array>> = {};

  beforeAll(async () => {
    h = await Harness.start();
    for (const name of ["alice", "bob", "carol", "dave", "erin"]) m[name] = await h.user(name).client();
    const [alice, bob, carol, dave, erin] = [m.alice, m.bob, m.carol, m.dave, m.erin] as Member[] as [
      Member,
      Member,
      Member,
      Member,
      Member,
    ];
    g1 = await TestGroup.create(h, alice);
    await g1.add(alice, [bob]);
    g2 = await TestGroup.create(h, carol);
    await g2.add(carol, [dave]);
    conn = await TestGroup.create(h, erin); // one user: a connection group
    const commit = (await updateOwnLeaf(alice.mls(), h.cs)).commit;
    for (const rpc of ["groupOperation", "joinConnectionGroup", "resync", "deleteGroup"] as const)
      g1Mls[rpc] = commit;
    g1Mls.selfRemove = (await proposeSelfRemove(bob.mls(), h.cs)).proposal;
    g1Mls.sendMessage = (await encryptMessage(alice.mls(), h.cs, new TextEncoder().encode("hi"))).message;
  });
  afterAll(async () => {
    await h?.stop();
  });

  /** Every group row, as stored. */
  async function rows(): Promise<string[]> {
    const all = await h.db.db.select().from(groups);
    return all
      .map(
        (r) =>
          `${Buffer.from(r.groupId).toString("hex")}:${Buffer.from(r.state).toString("hex")}:` +
          `${Buffer.from(r.queueReports).toString("hex")}:${r.lastActiveMonth}`,
      )
      .sort();
  }

  /** Sends `rpc` to `target` (its id and EAR key unless the variant replaces them). */
  async function send(rpc: Rpc, target: Target, v: Variant): Promise<unknown> {
    const groupId = v.groupId ?? target.group.groupId;
    const groupStateEarKey = v.earKey ?? target.group.earKey;
    const mls = v.mls ?? new Uint8Array();
    const key = target.signer.signingKey;
    const header = (r: Rpc) =>
      h.header(rpcLabel(Service[r]), { $case: "leafIndex", value: target.signer.leaf });
    const c = h.client;
    switch (rpc) {
      case "groupOperation": {
        const tbs = {
          header: header(rpc),
          groupId,
          commit: mls,
          groupInfo: new Uint8Array(),
          addedClients: undefined,
        };
        const signed = await h.sign(delivery.GroupOperationTbs, tbs, key);
        return call((d) => c.groupOperation({ signed, groupStateEarKey }, d));
      }
      case "joinConnectionGroup": {
        const tbs: delivery.JoinConnectionGroupTbs = {
          header: header(rpc),
          groupId,
          externalCommit: mls,
          groupInfo: new Uint8Array(),
          joinerQueue: target.signer.queue,
          encryptedUserProfileKey: new Uint8Array(),
        };
        const signed = await h.sign(delivery.JoinConnectionGroupTbs, tbs, key);
        return call((d) => c.joinConnectionGroup({ signed, groupStateEarKey }, d));
      }
      case "resync": {
        const tbs = { header: header(rpc), groupId, externalCommit: mls, groupInfo: new Uint8Array() };
        const signed = await h.sign(delivery.ResyncTbs, tbs, key);
        return call((d) => c.resync({ signed, groupStateEarKey }, d));
      }
      case "selfRemove": {
        const tbs = { header: header(rpc), groupId, removeProposals: [mls] };
        const signed = await h.sign(delivery.SelfRemoveTbs, tbs, key);
        return call((d) => c.selfRemove({ signed, groupStateEarKey }, d));
      }
      case "sendMessage": {
        const tbs = { header: header(rpc), groupId, message: mls, suppressNotifications: false };
        const signed = await h.sign(delivery.SendMessageTbs, tbs, key);
        return call((d) => c.sendMessage({ signed, groupStateEarKey }, d));
      }
      case "deleteGroup": {
        const tbs = { header: header(rpc), groupId, commit: mls };
        const signed = await h.sign(delivery.DeleteGroupTbs, tbs, key);
        return call((d) => c.deleteGroup({ signed, groupStateEarKey }, d));
      }
      case "welcomeInfo": {
        const ref = await makeKeyPackageRef(target.signer.keyPackage, h.cs.hash);
        const tbs = {
          header: h.header(rpcLabel(Service.welcomeInfo), { $case: "keyPackageRef", value: ref }),
          groupId,
          epoch: 1n,
        };
        const signed = await h.sign(delivery.WelcomeInfoTbs, tbs, key);
        return call((d) => c.welcomeInfo({ signed, groupStateEarKey }, d));
      }
      case "externalCommitInfo": {
        const signed = await h.sign(delivery.ExternalCommitInfoTbs, { header: header(rpc), groupId }, key);
        return call((d) => c.externalCommitInfo({ signed, groupStateEarKey }, d));
      }
      case "connectionGroupInfo":
        return call((d) => c.connectionGroupInfo({ groupId, groupStateEarKey }, d));
      case "updateQueueInfo": {
        const queue = { domain: DOMAIN, sealedQueueConfig: new Uint8Array(randomBytes(48)) };
        const signed = await h.sign(
          delivery.UpdateQueueInfoTbs,
          { header: header(rpc), groupId, queue },
          key,
        );
        return call((d) => c.updateQueueInfo({ signed, groupStateEarKey }, d));
      }
      case "updateProfileKey": {
        const tbs = {
          header: header(rpc),
          groupId,
          encryptedUserProfileKey: new Uint8Array(randomBytes(40)),
        };
        const signed = await h.sign(delivery.UpdateProfileKeyTbs, tbs, key);
        return call((d) => c.updateProfileKey({ signed, groupStateEarKey }, d));
      }
    }
  }

  /** The group an RPC is aimed at: connection-group RPCs at the one-user group, others at g1/g2. */
  function target(rpc: Rpc, which: "g1" | "g2"): Target {
    if (rpc === "joinConnectionGroup" || rpc === "connectionGroupInfo")
      return { group: conn, signer: m.erin as Member };
    const g = which === "g1" ? g1 : g2;
    // SelfRemove proposals are sent by leaf 1 (bob in g1, dave in g2); everything else by leaf 0.
    const leafOne = which === "g1" ? m.bob : m.dave;
    const leafZero = which === "g1" ? m.alice : m.carol;
    return { group: g, signer: (rpc === "selfRemove" ? leafOne : leafZero) as Member };
  }

  async function refused(
    p: Promise<unknown>,
  ): Promise<{ code: string; reason: common.ErrorReason | undefined }> {
    const code = await codeOf(p);
    const error = await p.then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    );
    return { code, reason: error ? errorDetailFromMetadata(error.metadata)?.reason : undefined };
  }

  it.each(MLS_RPCS)("%s: malformed or truncated MLS is INVALID_ARGUMENT", async (rpc) => {
    const before = await rows();
    const garbage = new Uint8Array(randomBytes(80));
    garbage[0] = 0;
    garbage[1] = 1; // mls10, then nonsense
    const valid = g1Mls[rpc] as Uint8Array;
    for (const mls of [garbage, valid.subarray(0, valid.length >> 1)]) {
      const { code } = await refused(send(rpc, target(rpc, "g1"), { mls }));
      expect(code).toBe("INVALID_ARGUMENT");
    }
    expect(await rows()).toEqual(before);
  });

  it.each(MLS_RPCS)("%s: MLS content of another group is INVALID_ARGUMENT", async (rpc) => {
    const before = await rows();
    const { code, reason } = await refused(send(rpc, target(rpc, "g2"), { mls: g1Mls[rpc] }));
    expect(code).toBe("INVALID_ARGUMENT");
    expect([ErrorReason.ERROR_REASON_INVALID_MLS, ErrorReason.ERROR_REASON_MALFORMED]).toContain(reason);
    expect(await rows()).toEqual(before);
  });

  it.each(ALL_RPCS)("%s: a wrong EAR key is UNAUTHENTICATED / WRONG_EAR_KEY", async (rpc) => {
    const before = await rows();
    const t = target(rpc, "g1");
    const { code, reason } = await refused(
      send(rpc, t, { earKey: new Uint8Array(randomBytes(32)), mls: g1Mls[rpc] }),
    );
    expect(code).toBe("UNAUTHENTICATED");
    expect(reason).toBe(ErrorReason.ERROR_REASON_WRONG_EAR_KEY);
    expect(await rows()).toEqual(before);
  });

  it.each(ALL_RPCS)(
    "%s: another group's id with this group's key is refused without a change",
    async (rpc) => {
      const before = await rows();
      const t = target(rpc, "g1");
      const other = t.group === conn ? g1 : g2;
      const { code, reason } = await refused(send(rpc, t, { groupId: other.groupId, mls: g1Mls[rpc] }));
      expect(code).toBe("UNAUTHENTICATED");
      expect(reason).toBe(ErrorReason.ERROR_REASON_WRONG_EAR_KEY);
      expect(await rows()).toEqual(before);
    },
  );

  it.each(ALL_RPCS)(
    "%s: an unknown group is NOT_FOUND, another domain's UNAVAILABLE without a federation gateway",
    async (rpc) => {
      const before = await rows();
      const t = target(rpc, "g1");
      const unknown = { uuid: new Uint8Array(randomBytes(16)), domain: DOMAIN };
      expect((await refused(send(rpc, t, { groupId: unknown, mls: g1Mls[rpc] }))).code).toBe("NOT_FOUND");
      const foreign = { ...t.group.groupId, domain: "beta.example" };
      expect((await refused(send(rpc, t, { groupId: foreign, mls: g1Mls[rpc] }))).code).toBe("UNAVAILABLE");
      const malformed = { ...t.group.groupId, domain: "Not A Domain" };
      expect((await refused(send(rpc, t, { groupId: malformed, mls: g1Mls[rpc] }))).code).toBe(
        "INVALID_ARGUMENT",
      );
      expect(await rows()).toEqual(before);
    },
  );

  it("still accepts the valid requests afterwards", async () => {
    const before = await rows();
    const alice = m.alice as Member;
    const upd = await updateOwnLeaf(alice.mls(), h.cs);
    const res = await g1.operation(alice, upd.commit, upd.groupInfo);
    expect(res.epoch).toBe(2n);
    expect(await rows()).not.toEqual(before);
  });
});
