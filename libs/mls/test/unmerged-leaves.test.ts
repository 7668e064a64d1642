// RFC 9420 §7.9.2: a leaf listed in a parent's unmerged_leaves must be listed by every non-blank
// node BETWEEN the leaf and that parent — ancestors above the parent may list more leaves (or
// fewer: a committer's update path resets them). ts-mls 1.6.4's validateRatchetTree compares the
// lists for equality all the way to the root and refuses such valid trees; @phoenix/mls joins with
// its own validation (src/tree-validation.ts), so newcomers can join them.
import { createGroupInfoWithExternalPub, emptyPskIndex, joinGroup, joinGroupExternal } from "ts-mls";
import { describe, expect, it } from "vitest";
import { keyPackage } from "./support/harness.js";
import { groupBeforeNestedInvite, nestedUnmerged } from "./support/nested-unmerged.js";

describe("joining a tree with nested unmerged leaves", () => {
  it("a newcomer joins when a parent's unmerged leaves differ from its ancestors' (ts-mls's own join refuses)", async () => {
    const s = await groupBeforeNestedInvite();
    expect(["x", "y"].every((n) => s.members.has(n))).toBe(true);
    const z = await keyPackage(s.cs, "z");
    const invite = await s.makeCommit("a", [], { joiners: [{ name: "z", kp: z }] });
    if (invite.welcome === undefined) throw new Error("no Welcome");
    expect(nestedUnmerged(invite.newState).length).toBeGreaterThan(0);
    // The same Welcome through ts-mls 1.6.4's joinGroup fails: this is the case it gets wrong.
    await expect(
      joinGroup(
        invite.welcome,
        z.publicPackage,
        z.privatePackage,
        emptyPskIndex,
        s.cs,
        invite.newState.ratchetTree,
      ),
    ).rejects.toThrow(/unmerged_leaves/);
    // deliver() joins z with joinGroupFromWelcome and checks every member is in sync.
    await s.deliver(invite);
    expect(s.members.has("z")).toBe(true);
    // z is a full member: everyone processes its commit.
    await s.commit("z");
    expect(s.state("a").groupContext.epoch).toBe(s.state("z").groupContext.epoch);
  });

  it("a non-member joins such a tree by external commit, and a member resyncs in it (ts-mls's own external join refuses)", async () => {
    const s = await groupBeforeNestedInvite();
    await s.commit("a", [], { joiners: [{ name: "z", kp: await keyPackage(s.cs, "z") }] });
    const tree = s.state("a").ratchetTree;
    expect(nestedUnmerged(s.state("a")).length).toBeGreaterThan(0);
    const ext = await keyPackage(s.cs, "ext");
    const gi = await createGroupInfoWithExternalPub(s.state("a"), [], s.cs);
    await expect(
      joinGroupExternal(gi, ext.publicPackage, ext.privatePackage, false, s.cs, tree),
    ).rejects.toThrow(/unmerged_leaves/);
    // externalJoin() uses joinGroupByExternalCommit; deliver() has every member process it.
    await s.externalJoin("ext", ext);
    expect(s.members.has("ext")).toBe(true);
    await s.externalJoin("ext", ext, true);
    expect(s.members.has("ext")).toBe(true);
  });
});
