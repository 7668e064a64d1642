import {
  createApplicationMessage,
  emptyPskIndex,
  generateKeyPackageWithKey,
  processPrivateMessage,
} from "ts-mls";
import { describe, expect, it } from "vitest";
import { PublicGroup } from "../src/public-group/public-group.js";
import { capabilities, identityOf, keyPackage, Scenario, TEST_EXTENSION, text } from "./support/harness.js";

describe("PublicGroup follows real ts-mls members byte for byte", () => {
  it("through add, update, remove, proposals by reference, external join, resync and extension change", async () => {
    const s = await Scenario.start("alice");
    const cs = s.cs;

    // Several adds in one commit; joiners get their tree from the validator.
    const joiners = await Promise.all(
      ["bob", "carol", "dave"].map(async (name) => ({ name, kp: await keyPackage(cs, name) })),
    );
    let staged = await s.commit("alice", [], { joiners, aad: text.encode("add-aad") });
    expect(staged.added.map((a) => [a.leafIndex, identityOf(a.credential)])).toEqual([
      [1, "bob"],
      [2, "carol"],
      [3, "dave"],
    ]);
    expect(staged.sender).toMatchObject({ kind: "member", leafIndex: 0 });
    expect(identityOf(staged.sender.credential)).toBe("alice");
    expect(new TextDecoder().decode(staged.aad)).toBe("add-aad");
    expect(staged.newEpoch).toBe(1n);
    expect(s.validator.epoch).toBe(1n);
    expect(s.members.size).toBe(4);

    // Self-update: a commit with only an UpdatePath.
    staged = await s.commit("bob");
    expect(staged.hasPath).toBe(true);
    expect(staged.proposals).toHaveLength(0);
    expect(staged.sender.leafIndex).toBe(1);

    // Remove by value.
    staged = await s.commit("alice", [{ proposalType: "remove", remove: { removed: s.leafOf("carol") } }]);
    expect(staged.removed.map((r) => [r.leafIndex, identityOf(r.credential)])).toEqual([[2, "carol"]]);
    expect(s.members.has("carol")).toBe(false);

    // Self-remove: dave proposes his own removal, bob commits it by reference.
    const accepted = await s.propose("dave", {
      proposalType: "remove",
      remove: { removed: s.leafOf("dave") },
    });
    expect(accepted.senderLeafIndex).toBe(3);
    expect(s.validator.pendingProposals).toHaveLength(1);
    staged = await s.commit("bob");
    expect(staged.proposals).toEqual([expect.objectContaining({ byReference: true, senderLeafIndex: 3 })]);
    expect(staged.removed.map((r) => r.leafIndex)).toEqual([3]);
    expect(s.validator.pendingProposals).toHaveLength(0);

    // An Add proposed by one member and committed by another (with a fresh joiner).
    const frank = await keyPackage(cs, "frank");
    await s.propose("bob", { proposalType: "add", add: { keyPackage: frank.publicPackage } });
    const pending = await s.makeCommit("alice");
    pending.joiners.push({ name: "frank", kp: frank });
    staged = await s.deliver(pending);
    expect(staged.added.map((a) => identityOf(a.credential))).toEqual(["frank"]);
    expect(staged.proposals[0]).toMatchObject({ byReference: true, senderLeafIndex: 1 });

    // External join.
    staged = await s.externalJoin("erin", await keyPackage(cs, "erin"));
    expect(staged.external).toBe(true);
    expect(staged.resync).toBe(false);
    expect(staged.sender.kind).toBe("new_member_commit");
    expect(identityOf(staged.sender.credential)).toBe("erin");
    expect(staged.sender.leafIndex).toBe(s.leafOf("erin"));

    // Serialise and restore the validator mid-life; it keeps working.
    const bytes = s.validator.encode();
    s.validator = PublicGroup.decode(bytes, s.options);
    expect(s.validator.encode()).toEqual(bytes);
    s.assertInSync();

    // Resync: bob rejoins by external commit, reusing his signature key, replacing his own leaf.
    const bobOld = s.state("bob");
    const bobLeaf = s.leafOf("bob");
    const bobSig = {
      signKey: bobOld.signaturePrivateKey,
      publicKey: s.validator.leaf(bobLeaf)?.signaturePublicKey ?? new Uint8Array(),
    };
    const bobNew = await generateKeyPackageWithKey(
      { credentialType: "basic", identity: text.encode("bob") },
      capabilities(),
      { notBefore: 0n, notAfter: 2n ** 62n },
      [],
      bobSig,
      cs,
    );
    staged = await s.externalJoin("bob", bobNew, true);
    expect(staged.resync).toBe(true);
    expect(staged.removed.map((r) => r.leafIndex)).toEqual([bobLeaf]);
    expect(identityOf(staged.sender.credential)).toBe("bob");

    // GroupContext extension change.
    const ext = { extensionType: TEST_EXTENSION, extensionData: text.encode("roles v2") };
    staged = await s.commit("alice", [
      { proposalType: "group_context_extensions", groupContextExtensions: { extensions: [ext] } },
    ]);
    expect(staged.newExtensions).toEqual([ext]);
    expect(s.validator.groupContext.extensions).toEqual([ext]);

    expect(s.validator.epoch).toBe(8n);
    // The members really share the epoch: an application message from alice reaches erin.
    const sent = await createApplicationMessage(s.state("alice"), text.encode("hi"), cs);
    const got = await processPrivateMessage(s.state("erin"), sent.privateMessage, emptyPskIndex, cs);
    expect(got.kind === "applicationMessage" && new TextDecoder().decode(got.message)).toBe("hi");
    expect(
      s.validator
        .members()
        .map((m) => identityOf(m.leaf.credential))
        .sort(),
    ).toEqual(["alice", "bob", "erin", "frank"]);
  });

  it("retains the trees of recent epochs in which members joined, bounded", async () => {
    const s = await Scenario.start("alice", { retainedTrees: 2 });
    for (const name of ["b", "c", "d"])
      await s.commit("alice", [], { joiners: [{ name, kp: await keyPackage(s.cs, name) }] });
    await s.commit("b");
    expect(s.validator.retainedEpochs()).toEqual([2n, 3n]);
    expect(s.validator.treeAt(1n)).toBeUndefined();
    expect(s.validator.treeAt(3n)?.filter((n) => n?.nodeType === "leaf")).toHaveLength(4);
    expect(s.validator.treeAt(4n)).toBe(s.validator.tree);
  });

  it("with a keep predicate, retains the trees still needed beyond retainedTrees and drops the others", async () => {
    const s = await Scenario.start("alice", { retainedTrees: 1, maxRetainedTrees: 3 });
    const needed = new Set<bigint>([2n, 4n]);
    s.mergeOptions = { keep: (epoch) => needed.has(epoch) };
    for (const name of ["b", "c", "d", "e"])
      await s.commit("alice", [], { joiners: [{ name, kp: await keyPackage(s.cs, name) }] });
    // Epochs 1 and 3 were not needed any more and went; 2 and 4 stay although retainedTrees is 1.
    expect(s.validator.retainedEpochs()).toEqual([2n, 4n]);
    expect(s.validator.treeAt(1n)).toBeUndefined();
    expect(s.validator.treeAt(2n)?.filter((n) => n?.nodeType === "leaf")).toHaveLength(3);
    // An epoch no longer needed is dropped on the next merge, even one without adds.
    needed.delete(2n);
    await s.commit("b");
    expect(s.validator.retainedEpochs()).toEqual([4n]);
    // The hard cap: with every epoch needed, only the newest maxRetainedTrees trees stay.
    s.mergeOptions = { keep: () => true };
    for (const name of ["f", "g", "h"])
      await s.commit("alice", [], { joiners: [{ name, kp: await keyPackage(s.cs, name) }] });
    expect(s.validator.retainedEpochs()).toEqual([6n, 7n, 8n]);
    // Without the option the old rule applies again: the last retainedTrees trees.
    s.mergeOptions = {};
    await s.commit("alice", [], { joiners: [{ name: "i", kp: await keyPackage(s.cs, "i") }] });
    expect(s.validator.retainedEpochs()).toEqual([9n]);
  });

  it("is created from a GroupInfo carrying the ratchet_tree extension and refuses one without a tree", async () => {
    const s = await Scenario.start("alice");
    await s.commit("alice", [], { joiners: [{ name: "bob", kp: await keyPackage(s.cs, "bob") }] });
    const { createGroupInfoWithExternalPubAndRatchetTree, createGroupInfoWithExternalPub } = await import(
      "ts-mls"
    );
    const withTree = await createGroupInfoWithExternalPubAndRatchetTree(s.state("bob"), [], s.cs);
    const fresh = await PublicGroup.fromGroupInfo(withTree, s.options);
    expect(fresh.encodedTree()).toEqual(s.validator.encodedTree());
    const withoutTree = await createGroupInfoWithExternalPub(s.state("bob"), [], s.cs);
    await expect(PublicGroup.fromGroupInfo(withoutTree, s.options)).rejects.toThrow(/no ratchet tree/);
  });
});
