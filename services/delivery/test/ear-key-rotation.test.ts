// Issue 13, finding 9: the group-state EAR key rotates with every commit that removes a member,
// so a removed member holding the old key (and a later copy of the database) cannot decrypt the
// state written after its removal. Joiners added before a rotation still build their state from
// the WelcomeInfo sealed into their WelcomeBundle.
import { randomBytes } from "node:crypto";
import type * as grpc from "@grpc/grpc-js";
import { AEAD_OVERHEAD, AeadLabel, decryptAtRest } from "@phoenix/crypto";
import {
  commitPendingProposals,
  encryptMessage,
  joinFromWelcome,
  processIncoming,
  proposeSelfRemove,
  removeMembers,
  updateOwnLeaf,
} from "@phoenix/mls";
import { common, delivery, errorDetailFromMetadata, rpcLabel } from "@phoenix/proto";
import { eventually } from "@phoenix/runtime/testing";
import { eq } from "drizzle-orm";
import { decodeRatchetTree } from "ts-mls/ratchetTree.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_STATE_BUCKETS } from "../src/config.js";
import { mlsGroupId, welcomeInfoAad } from "../src/domain/group.js";
import { decodeGroupState } from "../src/domain/group-state.js";
import { groups } from "../src/store/schema.js";
import { call, Harness, type Member, Service, TestGroup } from "./support/harness.js";

describe("EAR-key rotation on removals", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await Harness.start();
  });
  afterAll(async () => {
    await h?.stop();
  });

  /** The group's stored (encrypted) state, straight from the database. */
  async function storedState(g: TestGroup): Promise<Uint8Array> {
    const rows = await h.db.db.select().from(groups).where(eq(groups.groupId, g.groupId.uuid));
    const state = rows[0]?.state;
    if (state === undefined) throw new Error("no group row");
    return state;
  }

  /** Whether `key` opens the stored state (as a removed member with a database copy would try). */
  async function opens(g: TestGroup, key: Uint8Array): Promise<boolean> {
    try {
      decodeGroupState(
        decryptAtRest(key, AeadLabel.GroupState, await storedState(g), { aad: g.groupId.uuid }),
      );
      return true;
    } catch {
      return false;
    }
  }

  /** A GroupOperation with explicit keys (the harness rotates by itself). */
  async function operationWith(
    g: TestGroup,
    by: Member,
    out: { commit: Uint8Array; groupInfo: Uint8Array },
    newKey: Uint8Array | undefined,
  ): Promise<grpc.ServiceError | undefined> {
    const tbs: delivery.GroupOperationTbs = {
      header: h.header(rpcLabel(Service.groupOperation), { $case: "leafIndex", value: by.leaf }),
      groupId: g.groupId,
      commit: out.commit,
      groupInfo: out.groupInfo,
      addedClients: undefined,
    };
    const signed = await h.sign(delivery.GroupOperationTbs, tbs, by.signingKey);
    return call((d) =>
      h.client.groupOperation({ signed, groupStateEarKey: g.earKey, newGroupStateEarKey: newKey }, d),
    ).then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    );
  }

  async function message(g: TestGroup, by: Member): Promise<grpc.ServiceError | undefined> {
    const { message: mls } = await encryptMessage(by.mls(), h.cs, new TextEncoder().encode("hi"));
    const tbs: delivery.SendMessageTbs = {
      header: h.header(rpcLabel(Service.sendMessage), { $case: "leafIndex", value: by.leaf }),
      groupId: g.groupId,
      message: mls,
      suppressNotifications: false,
    };
    const signed = await h.sign(delivery.SendMessageTbs, tbs, by.signingKey);
    return call((d) => h.client.sendMessage({ signed, groupStateEarKey: g.earKey }, d)).then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    );
  }

  it("stores the state after a removal under the new key only; the old key is refused", async () => {
    const alice = await h.user("alice").client();
    const bob = await h.user("bob").client();
    const carol = await h.user("carol").client();
    const g = await TestGroup.create(h, alice);
    await g.add(alice, [bob, carol]);
    const oldKey = g.earKey;
    expect(await opens(g, oldKey)).toBe(true);

    // A removal without the next key is refused, naming the field; nothing changes.
    const rm = await removeMembers(alice.mls(), h.cs, [carol.leaf]);
    const missing = await operationWith(g, alice, rm, undefined);
    expect(missing?.code).toBe(3); // INVALID_ARGUMENT
    expect(missing?.details).toContain("new_group_state_ear_key");
    const same = await operationWith(g, alice, rm, oldKey);
    expect(same?.code).toBe(3);
    expect(await opens(g, oldKey)).toBe(true);

    // A commit that removes nobody cannot change the key (the members would not know it).
    const upd = await updateOwnLeaf(bob.mls(), h.cs);
    const stray = await operationWith(g, bob, upd, new Uint8Array(randomBytes(32)));
    expect(stray?.code).toBe(3);
    expect(stray?.details).toContain("new_group_state_ear_key");
    expect(await opens(g, oldKey)).toBe(true);

    // The removal with the next key: carol's (old) key no longer opens the stored state.
    await g.operation(alice, rm.commit, rm.groupInfo);
    await g.processByOthers(alice, rm.commit);
    alice.state = rm.newState;
    expect(g.earKey).not.toEqual(oldKey);
    expect(await opens(g, oldKey)).toBe(false);
    expect(await opens(g, g.earKey)).toBe(true);
    // Padding buckets are the same as before.
    expect(DEFAULT_STATE_BUCKETS).toContain((await storedState(g)).length - AEAD_OVERHEAD);

    // A member still on the old key is told so, and the key works once it has it.
    const currentKey = g.earKey;
    g.earKey = oldKey;
    const stale = await message(g, bob);
    expect(stale?.code).toBe(16); // UNAUTHENTICATED
    expect(errorDetailFromMetadata(stale?.metadata ?? ({} as grpc.Metadata))?.reason).toBe(
      common.ErrorReason.ERROR_REASON_WRONG_EAR_KEY,
    );
    expect(stale?.details).toContain("removes a member");
    g.earKey = currentKey;
    expect(await message(g, bob)).toBeUndefined();
  });

  it("rotates when a self-remove proposal is committed by reference", async () => {
    const alice = await h.user("alice").client();
    const bob = await h.user("bob").client();
    const g = await TestGroup.create(h, alice);
    await g.add(alice, [bob]);
    const oldKey = g.earKey;
    const p = await proposeSelfRemove(bob.mls(), h.cs);
    bob.state = p.newState;
    const tbs: delivery.SelfRemoveTbs = {
      header: h.header(rpcLabel(Service.selfRemove), { $case: "leafIndex", value: bob.leaf }),
      groupId: g.groupId,
      removeProposals: [p.proposal],
    };
    const signed = await h.sign(delivery.SelfRemoveTbs, tbs, bob.signingKey);
    await call((d) => h.client.selfRemove({ signed, groupStateEarKey: g.earKey }, d));
    alice.state = (await processIncoming(alice.mls(), h.cs, p.proposal)).newState;
    const commit = await commitPendingProposals(alice.mls(), h.cs);
    // By reference only: no Remove by value in the commit, yet it removes bob.
    expect(await operationWith(g, alice, commit, undefined)).toMatchObject({ code: 3 });
    await g.operation(alice, commit.commit, commit.groupInfo);
    expect(await opens(g, oldKey)).toBe(false);
    expect(await opens(g, g.earKey)).toBe(true);
  });

  it("a joiner added before a rotation builds its state from the WelcomeInfo in its bundle", async () => {
    const alice = await h.user("alice").client();
    const bob = await h.user("bob").client();
    const carol = await h.user("carol").client();
    const dave = await h.user("dave").client();
    const g = await TestGroup.create(h, alice);
    await g.add(alice, [bob]);
    // dave is added (with the current key in his attribution info) but stays offline ...
    const keyForDave = g.earKey;
    const { res } = await g.addWithoutJoining(alice, [dave]);
    await g.add(alice, [carol]);
    // ... while alice removes carol, which rotates the key.
    const rm = await removeMembers(alice.mls(), h.cs, [carol.leaf]);
    await g.operation(alice, rm.commit, rm.groupInfo);
    await g.processByOthers(alice, rm.commit);
    alice.state = rm.newState;
    expect(await opens(g, keyForDave)).toBe(false);

    // WelcomeInfo with dave's key cannot open the state any more; his bundle has what he needs.
    const ref = await h.waitForPayload(dave, "welcomeBundle");
    if (ref.content?.$case !== "welcomeBundle") throw new Error("no bundle");
    const bundle = ref.content.value;
    expect(bundle.encryptedWelcomeInfo.length).toBeGreaterThan(0);
    const info = delivery.WelcomeInfoResponse.decode(
      decryptAtRest(keyForDave, AeadLabel.WelcomeInfo, bundle.encryptedWelcomeInfo, {
        aad: welcomeInfoAad(mlsGroupId(g.groupId), res.epoch),
      }),
    );
    const tree = decodeRatchetTree(info.ratchetTree, 0)?.[0];
    dave.state = await joinFromWelcome(bundle.welcome, dave.keyPackage, dave.privateKeyPackage, h.cs, tree);
    expect(info.members.map((m) => m.leafIndex)).toContain(dave.leaf);
    // He catches up from his queue (the bundle, carol's add, her removal); then his epoch is
    // the group's.
    await eventually(() => h.inbox(dave).length >= 3, { message: "3 payloads in dave's queue" });
    expect(h.inbox(dave)).toHaveLength(3);
    for (const p of h.inbox(dave)) {
      if (p.content?.$case !== "mlsMessage") continue;
      dave.state = (await processIncoming(dave.mls(), h.cs, p.content.value)).newState;
    }
    expect(dave.mls().groupContext.epoch).toBe(alice.mls().groupContext.epoch);
  });
});
