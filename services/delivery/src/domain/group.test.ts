// The DS group rules on real ts-mls members, without I/O: every accepted request is stored and
// reopened through the state codec (as the pipeline does); a refused one leaves the stored state.
import { randomBytes } from "node:crypto";
import {
  addMembers,
  type CommitOutput,
  commitPendingProposals,
  commitRemovesMembers,
  createNodeCryptoProvider,
  createPhoenixGroup,
  joinFromWelcome,
  PHOENIX_CIPHERSUITE,
  processIncoming,
  proposeSelfRemove,
  removeMembers,
  setRoles,
  updateOwnLeaf,
} from "@phoenix/mls";
import { common, delivery } from "@phoenix/proto";
import {
  FailedPreconditionError,
  InvalidArgumentError,
  PermissionDeniedError,
} from "@phoenix/runtime/errors";
import { type CiphersuiteImpl, getCiphersuiteFromName, getCiphersuiteImpl } from "ts-mls";
import { decodeRatchetTree, encodeRatchetTree } from "ts-mls/ratchetTree.js";
import { beforeAll, describe, expect, it } from "vitest";
import { DOMAIN, type Member, Pki, User } from "../../test/support/members.js";
import type { DsContext } from "./ds-context.js";
import { translateDeliveryError } from "./errors.js";
import { type CommitInput, DsGroup, mlsGroupId } from "./group.js";
import { decodeGroupState, encodeGroupState } from "./group-state.js";

const DAY = 86_400_000;
const EAR_KEY = new Uint8Array(32).fill(1);
const NEXT_EAR_KEY = new Uint8Array(32).fill(2);
let cs: CiphersuiteImpl;
let clock = Date.now();
const pki = new Pki();
let ctx: DsContext;

beforeAll(async () => {
  cs = await getCiphersuiteImpl(getCiphersuiteFromName(PHOENIX_CIPHERSUITE), createNodeCryptoProvider());
  ctx = { cipherSuite: cs, now: () => clock, domain: DOMAIN, clientInactivityMs: DAY };
});

function user(name: string): User {
  return new User(name, pki, cs);
}

/** One group's stored state plus its members' client states. */
class Sim {
  readonly members: Member[] = [];
  private constructor(private saved: Uint8Array) {}

  static async create(creator: Member): Promise<Sim> {
    const uuid = new Uint8Array(randomBytes(16));
    const { state, groupInfo } = await createPhoenixGroup({
      cipherSuite: cs,
      groupId: mlsGroupId({ uuid, domain: DOMAIN }),
      keyPackage: creator.keyPackage,
      privateKeyPackage: creator.privateKeyPackage,
      roles: [{ subject: { kind: "pseudonym", pseudonym: creator.pseudonym }, role: "admin" }],
    });
    creator.state = state;
    const { group } = await DsGroup.create(
      {
        mlsGroupId: mlsGroupId({ uuid, domain: DOMAIN }),
        ratchetTree: encodeRatchetTree(state.ratchetTree),
        groupInfo,
        creatorClientInfo: new Uint8Array(randomBytes(64)),
        creatorQueue: creator.queue,
        encryptedUserProfileKey: new Uint8Array(randomBytes(40)),
      },
      ctx,
    );
    const sim = new Sim(encodeGroupState(group.toState()));
    sim.members.push(creator);
    return sim;
  }

  /** The group as the next request sees it. */
  get group(): DsGroup {
    return DsGroup.open(decodeGroupState(this.saved), ctx);
  }

  /** Runs a request on the stored group; stores the result only if it succeeds. */
  async request<T>(f: (group: DsGroup) => Promise<T> | T): Promise<T> {
    const group = this.group;
    const result = await f(group);
    this.saved = encodeGroupState(group.toState());
    return result;
  }

  commit(by: Member, out: CommitOutput, extra: Partial<CommitInput> = {}) {
    // A commit that removes someone rotates the EAR key (the key itself is the pipeline's business).
    const rotates = commitRemovesMembers(by.mls(), out.commit);
    return this.request((g) =>
      g.applyCommit({
        kind: "operation",
        senderLeaf: by.leaf,
        commit: out.commit,
        groupInfo: out.groupInfo,
        addedClients: undefined,
        earKey: EAR_KEY,
        newEarKey: rotates ? NEXT_EAR_KEY : undefined,
        ...extra,
      }),
    );
  }

  /** The DS accepted `out` from `by`: everyone else processes it, `by` merges. */
  async accepted(by: Member, out: CommitOutput): Promise<void> {
    for (const m of [...this.members]) {
      if (m === by) continue;
      const res = await processIncoming(m.mls(), cs, out.commit);
      if (res.kind === "handshake" && res.removedFromGroup) this.members.splice(this.members.indexOf(m), 1);
      else m.state = res.newState;
    }
    by.state = out.newState;
  }

  async add(by: Member, joiners: Member[]): Promise<void> {
    const out = await this.tryAdd(by, joiners);
    const res = await this.commit(by, out.out, { addedClients: out.addedClients });
    await this.accepted(by, out.out);
    const info = this.group.welcomeInfo(res.newEpoch);
    if (info === undefined || out.out.welcome === undefined) throw new Error("no Welcome tree kept");
    const tree = decodeRatchetTree(info.ratchetTree, 0)?.[0];
    for (const j of joiners) {
      j.state = await joinFromWelcome(out.out.welcome, j.keyPackage, j.privateKeyPackage, cs, tree);
      this.members.push(j);
    }
  }

  async tryAdd(by: Member, joiners: Member[]) {
    const aad = delivery.CommitAad.encode({
      addedClientInfos: joiners.map(() => new Uint8Array(randomBytes(64))),
      senderClientInfo: new Uint8Array(),
    }).finish();
    const out = await addMembers(
      by.mls(),
      cs,
      joiners.map((j) => j.keyPackage),
      { aad },
    );
    if (out.welcome === undefined) throw new Error("no Welcome");
    const addedClients: delivery.AddedClientsInfo = {
      welcome: out.welcome,
      encryptedWelcomeAttributionInfos: joiners.map(() => new Uint8Array(randomBytes(32))),
    };
    return { out, addedClients };
  }
}

describe("DsGroup roles", () => {
  it("lets only admins add or remove other users or change roles; users manage their own clients", async () => {
    const alice = await user("alice").client();
    const bob = user("bob");
    const bob1 = await bob.client("bob1");
    const sim = await Sim.create(alice);
    await sim.add(alice, [bob1]);

    const carol = await user("carol").client();
    const addCarol = await sim.tryAdd(bob1, [carol]);
    await expect(sim.commit(bob1, addCarol.out, { addedClients: addCarol.addedClients })).rejects.toThrow(
      PermissionDeniedError,
    );

    const bob2 = await bob.client("bob2");
    await sim.add(bob1, [bob2]); // a second client of bob's own user

    await expect(sim.commit(bob1, await removeMembers(bob1.mls(), cs, [alice.leaf]))).rejects.toThrow(
      /only admins can remove other users/,
    );
    const promote = await setRoles(bob1.mls(), cs, [
      { subject: { kind: "pseudonym", pseudonym: alice.pseudonym }, role: "admin" },
      { subject: { kind: "pseudonym", pseudonym: bob.pseudonym }, role: "admin" },
    ]);
    await expect(sim.commit(bob1, promote)).rejects.toThrow(/only admins can change roles/);

    // Removing a user removes all of its clients.
    const partial = await removeMembers(alice.mls(), cs, [bob1.leaf]);
    await expect(sim.commit(alice, partial)).rejects.toThrow(InvalidArgumentError);
    await expect(sim.commit(alice, partial)).rejects.toThrow(/all of its clients/);
    const both = await removeMembers(alice.mls(), cs, [bob1.leaf, bob2.leaf]);
    const res = await sim.commit(alice, both);
    await sim.accepted(alice, both);
    expect(res.newEpoch).toBe(3n);
    expect(sim.group.memberInfos().map((m) => m.leafIndex)).toEqual([alice.leaf]);
  });

  it("fans a commit out to every other member and the Welcome only to the added clients", async () => {
    const alice = await user("alice").client();
    const bob = await user("bob").client();
    const carol = await user("carol").client();
    const sim = await Sim.create(alice);
    await sim.add(alice, [bob]);
    const add = await sim.tryAdd(alice, [carol]);
    const { fanOuts } = await sim.commit(alice, add.out, { addedClients: add.addedClients });
    expect(fanOuts.map((f) => [f.content.$case, f.recipients])).toEqual([
      ["mlsMessage", [bob.queue]],
      ["welcomeBundle", [carol.queue]],
    ]);
  });
});

describe("DsGroup proposal store", () => {
  it("requires the next commit to include a stored self-remove", async () => {
    const alice = await user("alice").client();
    const bob = await user("bob").client();
    const carol = await user("carol").client();
    const sim = await Sim.create(alice);
    await sim.add(alice, [bob, carol]);

    const p = await proposeSelfRemove(bob.mls(), cs);
    bob.state = p.newState;
    const plans = await sim.request((g) => g.storeSelfRemove(bob.leaf, [p.proposal]));
    expect(plans.map((f) => f.recipients)).toEqual([[alice.queue, carol.queue]]);
    expect(sim.group.proposalMessages).toEqual([p.proposal]);

    // carol has not seen the proposal: her commit is refused, naming what is pending.
    const stale = await updateOwnLeaf(carol.mls(), cs);
    const refused = await sim.commit(carol, stale).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(FailedPreconditionError);
    expect((refused as Error).message).toMatch(/1 stored proposal/);
    expect(sim.group.proposalMessages).toHaveLength(1);

    // alice includes it: bob is out, the store is empty.
    for (const m of [alice, carol]) m.state = (await processIncoming(m.mls(), cs, p.proposal)).newState;
    const commit = await commitPendingProposals(alice.mls(), cs);
    await sim.commit(alice, commit);
    await sim.accepted(alice, commit);
    expect(sim.group.proposalMessages).toHaveLength(0);
    expect(sim.group.memberInfos().map((m) => m.leafIndex)).toEqual([alice.leaf, carol.leaf]);
  });

  it("refuses a self-remove that leaves another client of the same user behind", async () => {
    const alice = await user("alice").client();
    const bob = user("bob");
    const [bob1, bob2] = [await bob.client("bob1"), await bob.client("bob2")];
    const sim = await Sim.create(alice);
    await sim.add(alice, [bob1, bob2]);
    const p = await proposeSelfRemove(bob1.mls(), cs);
    await expect(sim.request((g) => g.storeSelfRemove(bob1.leaf, [p.proposal]))).rejects.toThrow(
      /exactly the clients of the sender's user/,
    );
    expect(sim.group.proposalMessages).toHaveLength(0);
  });
});

describe("DsGroup required removals", () => {
  it("flags inactive clients and deleted queues once, and any member may commit their removal", async () => {
    clock = Date.now();
    const alice = await user("alice").client();
    const bob = await user("bob").client();
    const carol = await user("carol").client();
    const sim = await Sim.create(alice);
    await sim.add(alice, [bob, carol]);
    clock += 2 * DAY; // beyond the one-day inactivity limit
    const dave = await user("dave").client();
    await sim.add(alice, [dave]); // alice and dave are active now; bob and carol are not

    const notices = await sim.request((g) => g.collectRequiredRemovals([carol.queue], alice.leaf));
    expect(notices).toHaveLength(1);
    const notice = notices[0];
    if (notice?.content.$case !== "requiredRemovals") throw new Error("expected a RequiredRemovals notice");
    expect(notice.recipients).toHaveLength(4);
    expect(notice.content.value.removals).toEqual([
      { leafIndex: bob.leaf, reason: common.RemovalReason.REMOVAL_REASON_INACTIVE },
      { leafIndex: carol.leaf, reason: common.RemovalReason.REMOVAL_REASON_QUEUE_DELETED },
    ]);
    // Announced once: the next request finds nothing new.
    expect(await sim.request((g) => g.collectRequiredRemovals([carol.queue], dave.leaf))).toEqual([]);

    // A commit that does not carry them out is refused …
    const update = await updateOwnLeaf(dave.mls(), cs);
    await expect(sim.commit(dave, update)).rejects.toThrow(/required removal of leaf/);
    // … one that does is accepted from a non-admin, and the requirement is gone.
    const removal = await removeMembers(dave.mls(), cs, [bob.leaf, carol.leaf]);
    await sim.commit(dave, removal);
    await sim.accepted(dave, removal);
    expect(sim.group.requiredRemovals).toEqual([]);
    expect(sim.group.memberInfos().map((m) => m.leafIndex)).toEqual([alice.leaf, dave.leaf]);
  });
});

describe("the DS error mapping", () => {
  it("answers a commit for an old epoch FAILED_PRECONDITION with the current epoch", async () => {
    const alice = await user("alice").client();
    const bob = await user("bob").client();
    const sim = await Sim.create(alice);
    await sim.add(alice, [bob]);
    const late = await updateOwnLeaf(bob.mls(), cs);
    const first = await updateOwnLeaf(alice.mls(), cs);
    await sim.commit(alice, first);
    const raw = await sim.commit(bob, late).catch((e: unknown) => e);
    expect(raw).not.toBeInstanceOf(FailedPreconditionError); // validator error, mapped at the edge
    const mapped = translateDeliveryError(raw);
    expect(mapped).toBeInstanceOf(FailedPreconditionError);
    expect(mapped?.message).toBe("message is for epoch 1, the group is at epoch 2");
    expect(translateDeliveryError(new Error("a bug"))).toBeUndefined();
  });
});
