import { randomBytes } from "node:crypto";
import type * as grpc from "@grpc/grpc-js";
import { AEAD_OVERHEAD, toHex } from "@phoenix/crypto";
import {
  commitPendingProposals,
  joinExternally,
  processIncoming,
  proposeSelfRemove,
  removeMembers,
  resync,
  updateOwnLeaf,
} from "@phoenix/mls";
import { common, delivery, errorDetailFromMetadata, rpcLabel } from "@phoenix/proto";
import { eventually } from "@phoenix/runtime/testing";
import { sql } from "drizzle-orm";
import { decodeRatchetTree } from "ts-mls/ratchetTree.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_STATE_BUCKETS } from "../src/config.js";
import { call, codeOf, Harness, type Member, Service, TestGroup } from "./support/harness.js";

const DAY = 86_400_000;

describe("DS proposals, external commits, deletion and DS-induced removals", () => {
  let h: Harness;
  let offset = 0;
  const secrets: Uint8Array[] = [];
  beforeAll(async () => {
    h = await Harness.start({ now: () => Date.now() + offset, clientInactivityMs: DAY });
  });
  afterAll(async () => {
    await h?.stop();
  });

  function remember(...members: Member[]): void {
    for (const m of members)
      secrets.push(
        m.credential.credentialType === "basic" ? m.credential.identity : new Uint8Array(),
        m.queue.sealedQueueConfig,
        m.pseudonym,
      );
  }

  async function selfRemove(g: TestGroup, m: Member, proposal: Uint8Array): Promise<unknown> {
    const tbs: delivery.SelfRemoveTbs = {
      header: h.header(rpcLabel(Service.selfRemove), { $case: "leafIndex", value: m.leaf }),
      groupId: g.groupId,
      removeProposals: [proposal],
    };
    const signed = await h.sign(delivery.SelfRemoveTbs, tbs, m.signingKey);
    return call((d) => h.client.selfRemove({ signed, groupStateEarKey: g.earKey }, d));
  }

  it("stores a self-remove proposal, refuses a commit without it and accepts one that includes it", async () => {
    const alice = await h.user("alice").client();
    const bob = await h.user("bob").client();
    const carol = await h.user("carol").client();
    remember(alice, bob, carol);
    const g = await TestGroup.create(h, alice);
    await g.add(alice, [bob, carol]);
    const p = await proposeSelfRemove(bob.mls(), h.cs);
    bob.state = p.newState;
    await selfRemove(g, bob, p.proposal);
    // alice processes the proposal; carol has not seen it yet and commits without it.
    const ra = await processIncoming(alice.mls(), h.cs, p.proposal);
    alice.state = ra.newState;
    const stale = await updateOwnLeaf(carol.mls(), h.cs);
    const refused = await g
      .operation(carol, stale.commit, stale.groupInfo)
      .catch((e: grpc.ServiceError) => e);
    expect((refused as grpc.ServiceError).code).toBe(9); // FAILED_PRECONDITION
    const detail = errorDetailFromMetadata((refused as grpc.ServiceError).metadata);
    expect(detail?.detail?.$case).toBe("pendingProposals");
    if (detail?.detail?.$case === "pendingProposals") expect(detail.detail.value.proposals).toHaveLength(1);
    // carol catches up on the proposal; alice (not bob) commits it.
    const rc = await processIncoming(carol.mls(), h.cs, p.proposal);
    carol.state = rc.newState;
    const commit = await commitPendingProposals(alice.mls(), h.cs);
    const res = await g.operation(alice, commit.commit, commit.groupInfo);
    expect(res.epoch).toBe(2n);
    await g.processByOthers(alice, commit.commit);
    alice.state = commit.newState;
    expect(g.members.map((m) => m.name).sort()).toEqual(["alice", "carol"]);
  });

  it("joins a connection group by external commit, resyncs and deletes the group", async () => {
    const alice = await h.user("alice").client();
    const dave = await h.user("dave").client();
    remember(alice, dave);
    const g = await TestGroup.create(h, alice);
    const info = await call<delivery.ConnectionGroupInfoResponse>((d) =>
      h.client.connectionGroupInfo({ groupId: g.groupId, groupStateEarKey: g.earKey }, d),
    );
    const tree = decodeRatchetTree(info.ratchetTree, 0)?.[0];
    const aad = delivery.CommitAad.encode({
      addedClientInfos: [],
      senderClientInfo: new Uint8Array(randomBytes(90)),
    }).finish();
    const joined = await joinExternally(info.groupInfo, dave.keyPackage, dave.privateKeyPackage, h.cs, tree, {
      aad,
    });
    const joinTbs: delivery.JoinConnectionGroupTbs = {
      header: h.header(rpcLabel(Service.joinConnectionGroup), {
        $case: "leafIndex",
        value: joined.newState.privatePath.leafIndex,
      }),
      groupId: g.groupId,
      externalCommit: joined.commit,
      groupInfo: joined.groupInfo,
      joinerQueue: dave.queue,
      encryptedUserProfileKey: new Uint8Array(randomBytes(40)),
    };
    const signedJoin = await h.sign(delivery.JoinConnectionGroupTbs, joinTbs, dave.signingKey);
    const res = await call<delivery.JoinConnectionGroupResponse>((d) =>
      h.client.joinConnectionGroup({ signed: signedJoin, groupStateEarKey: g.earKey }, d),
    );
    expect(res.epoch).toBe(1n);
    await g.processByOthers(undefined, joined.commit);
    dave.state = joined.newState;
    g.members.push(dave);
    // Now two users: the connection group can no longer be joined or inspected by EAR key alone.
    expect(
      await codeOf(
        call((d) => h.client.connectionGroupInfo({ groupId: g.groupId, groupStateEarKey: g.earKey }, d)),
      ),
    ).toBe("FAILED_PRECONDITION");

    // dave lost his state: resync through ExternalCommitInfo + an external commit replacing his leaf.
    const eciTbs: delivery.ExternalCommitInfoTbs = {
      header: h.header(rpcLabel(Service.externalCommitInfo), { $case: "leafIndex", value: dave.leaf }),
      groupId: g.groupId,
    };
    const eci = await call<delivery.ExternalCommitInfoResponse>(async (d) =>
      h.client.externalCommitInfo(
        {
          signed: await h.sign(delivery.ExternalCommitInfoTbs, eciTbs, dave.signingKey),
          groupStateEarKey: g.earKey,
        },
        d,
      ),
    );
    expect(eci.members).toHaveLength(2);
    const re = await resync({
      cipherSuite: h.cs,
      groupInfo: eci.groupInfo,
      ratchetTree: decodeRatchetTree(eci.ratchetTree, 0)?.[0],
      credential: dave.credential,
      signatureKeyPair: { signKey: dave.signingKey.exportSeed(), publicKey: dave.signingKey.publicKey },
      queueConfig: common.QsReference.encode(dave.queue).finish(),
      aad: delivery.CommitAad.encode({
        addedClientInfos: [],
        senderClientInfo: new Uint8Array(randomBytes(90)),
      }).finish(),
    });
    const resyncTbs: delivery.ResyncTbs = {
      header: h.header(rpcLabel(Service.resync), { $case: "leafIndex", value: dave.leaf }),
      groupId: g.groupId,
      externalCommit: re.commit,
      groupInfo: re.groupInfo,
    };
    const resynced = await call<delivery.ResyncResponse>(async (d) =>
      h.client.resync(
        { signed: await h.sign(delivery.ResyncTbs, resyncTbs, dave.signingKey), groupStateEarKey: g.earKey },
        d,
      ),
    );
    expect(resynced.epoch).toBe(2n);
    await g.processByOthers(dave, re.commit);
    dave.state = re.newState;

    // alice (admin) deletes the group: dave gets the commit, then the group is gone.
    const del = await removeMembers(alice.mls(), h.cs, [dave.leaf]);
    const delTbs: delivery.DeleteGroupTbs = {
      header: h.header(rpcLabel(Service.deleteGroup), { $case: "leafIndex", value: alice.leaf }),
      groupId: g.groupId,
      commit: del.commit,
    };
    const before = h.fanOuts.length;
    await call(async (d) =>
      h.client.deleteGroup(
        {
          signed: await h.sign(delivery.DeleteGroupTbs, delTbs, alice.signingKey),
          groupStateEarKey: g.earKey,
        },
        d,
      ),
    );
    await h.waitForFanOuts(before + 1);
    const isDeletion = (f: (typeof h.fanOuts)[number]) => {
      const p = common.QueuePayload.decode(f.payload);
      return p.content?.$case === "mlsMessage" && toHex(p.content.value) === toHex(del.commit);
    };
    const deletion = await eventually(() => h.fanOuts.find(isDeletion), {
      message: "the deletion's fan-out",
    });
    expect(deletion?.recipients.map((r) => toHex(r.sealedQueueConfig))).toEqual([
      toHex(dave.queue.sealedQueueConfig),
    ]);
    expect(
      await codeOf(
        call((d) => h.client.connectionGroupInfo({ groupId: g.groupId, groupStateEarKey: g.earKey }, d)),
      ),
    ).toBe("NOT_FOUND");
  });

  it("proposes the removal of an inactive client and requires the next commit to carry it out", async () => {
    const alice = await h.user("alice").client();
    const bob = await h.user("bob").client();
    remember(alice, bob);
    const g = await TestGroup.create(h, alice);
    await g.add(alice, [bob]);
    offset = 2 * DAY; // alice sends nothing for two days; the limit is one day.
    try {
      const upd = await updateOwnLeaf(bob.mls(), h.cs);
      const before = h.fanOuts.length;
      const refused = await g.operation(bob, upd.commit, upd.groupInfo).catch((e: grpc.ServiceError) => e);
      const detail = errorDetailFromMetadata((refused as grpc.ServiceError).metadata);
      expect(detail?.detail?.$case).toBe("pendingProposals");
      if (detail?.detail?.$case === "pendingProposals")
        expect(detail.detail.value.requiredRemovals).toEqual([
          { leafIndex: alice.leaf, reason: common.RemovalReason.REMOVAL_REASON_INACTIVE },
        ]);
      // The notice was fanned out although the commit was refused.
      await h.waitForFanOuts(before + 1);
      const notice = await h.waitForPayload(bob, "requiredRemovals");
      if (notice.content?.$case === "requiredRemovals")
        expect(notice.content.value.removals.map((r) => r.leafIndex)).toEqual([alice.leaf]);
      // bob is no admin, but a DS-required removal may be committed by anyone.
      const rm = await removeMembers(bob.mls(), h.cs, [alice.leaf]);
      const res = await g.operation(bob, rm.commit, rm.groupInfo);
      expect(res.epoch).toBe(2n);
    } finally {
      offset = 0;
    }
  });

  it("leaves no plaintext credential, queue config or pseudonym in the database; rows are padded", async () => {
    expect(secrets.length).toBeGreaterThan(0);
    const result = await h.db.db.execute(
      sql`select encode(convert_to(coalesce(string_agg(encode(state, 'hex') || encode(queue_reports, 'hex'), ''), ''), 'UTF8'), 'escape') as dump, array_agg(length(state)) as sizes from groups`,
    );
    const row = (result as unknown as { rows: { dump: string; sizes: number[] }[] }).rows[0];
    const dump = row?.dump ?? "";
    expect(dump.length).toBeGreaterThan(0);
    for (const s of secrets) expect(dump.includes(toHex(s))).toBe(false);
    // Everything reached the bus: the outbox drains.
    await eventually(
      async () => {
        const outbox = await h.db.db.execute(sql`select count(*)::int as n from phoenix_runtime.outbox`);
        return (outbox as unknown as { rows: { n: number }[] }).rows[0]?.n === 0;
      },
      { message: "the outbox to drain" },
    );
    for (const size of row?.sizes ?? []) expect(DEFAULT_STATE_BUCKETS).toContain(size - AEAD_OVERHEAD);
  });
});
