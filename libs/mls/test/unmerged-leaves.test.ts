// RFC 9420 §7.9.2: a leaf listed in a parent's unmerged_leaves must be listed by every non-blank
// node BETWEEN the leaf and that parent — ancestors above the parent may list more leaves (or
// fewer: a committer's update path resets them). ts-mls 1.6.4 compared the lists for equality
// all the way to the root and refused such valid trees when a newcomer joined;
// scripts/patch-ts-mls.mjs fixes that at install.
import type { ClientState } from "ts-mls";
import { directPath, leafToNodeIndex, leafWidth, toLeafIndex, toNodeIndex } from "ts-mls/treemath.js";
import { describe, expect, it } from "vitest";
import { keyPackage, Scenario } from "./support/harness.js";

/** Pairs (parent, ancestor) where the ancestor is non-blank but lists other unmerged leaves. */
function nestedUnmerged(state: ClientState): [number, number][] {
  const tree = state.ratchetTree;
  const width = leafWidth(tree.length);
  const found: [number, number][] = [];
  tree.forEach((node, index) => {
    if (node?.nodeType !== "parent") return;
    for (const leaf of node.parent.unmergedLeaves) {
      const path = directPath(leafToNodeIndex(toLeafIndex(leaf)), width);
      for (const above of path.slice(path.indexOf(toNodeIndex(index)) + 1)) {
        const other = tree[above];
        if (other?.nodeType !== "parent") continue;
        const same =
          other.parent.unmergedLeaves.length === node.parent.unmergedLeaves.length &&
          other.parent.unmergedLeaves.every((l, i) => l === node.parent.unmergedLeaves[i]);
        if (!same) found.push([index, above]);
      }
    }
  });
  return found;
}

describe("joining a tree with nested unmerged leaves", () => {
  it("newcomers join when a parent's unmerged leaves differ from its ancestors'", async () => {
    const s = await Scenario.start("a");
    const joiners = [];
    for (const name of ["b", "c", "d", "e", "f", "g"])
      joiners.push({ name, kp: await keyPackage(s.cs, name) });
    await s.commit("a", [], { joiners });
    // Free leaf 5 (f): its direct path is blanked; e's update then fills node 11 again (its
    // copath holds g) but not node 9 (its copath, leaf 5, is blank).
    await s.commit("a", [{ proposalType: "remove", remove: { removed: s.leafOf("f") } }]);
    await s.commit("e");
    // Newcomers land under the non-blank node 11, which lists them as unmerged (so does the root).
    for (const name of ["x", "y"]) {
      await s.commit("a", [], { joiners: [{ name, kp: await keyPackage(s.cs, name) }] });
      expect(s.members.has(name)).toBe(true);
    }
    // b's update path resets the root's list while node 11 keeps [5, 7]: valid, and z joins it.
    await s.commit("b");
    await s.commit("a", [], { joiners: [{ name: "z", kp: await keyPackage(s.cs, "z") }] });
    expect(s.members.has("z")).toBe(true);
    expect(nestedUnmerged(s.state("z")).length).toBeGreaterThan(0);
  });
});
