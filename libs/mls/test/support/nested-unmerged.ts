// A group whose next newcomer gets a ratchet tree with nested unmerged leaves: a parent lists
// unmerged leaves that a non-blank ancestor does not (RFC 9420 §7.9.2 allows it).
import type { ClientState } from "ts-mls";
import { directPath, leafToNodeIndex, leafWidth, toLeafIndex, toNodeIndex } from "ts-mls/treemath.js";
import { keyPackage, Scenario } from "./harness.js";

/** Pairs (parent, ancestor) where the ancestor is non-blank but lists other unmerged leaves. */
export function nestedUnmerged(state: ClientState): [number, number][] {
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

/**
 * Members a…g, then f removed, e's update, x and y added, b's update: the next member added gets a
 * tree where node 11 lists unmerged leaves [5, 7] while the root (reset by b's path) lists fewer.
 */
export async function groupBeforeNestedInvite(): Promise<Scenario> {
  const s = await Scenario.start("a");
  const joiners = [];
  for (const name of ["b", "c", "d", "e", "f", "g"]) joiners.push({ name, kp: await keyPackage(s.cs, name) });
  await s.commit("a", [], { joiners });
  // Free leaf 5 (f): its direct path is blanked; e's update then fills node 11 again (its copath
  // holds g) but not node 9 (its copath, leaf 5, is blank).
  await s.commit("a", [{ proposalType: "remove", remove: { removed: s.leafOf("f") } }]);
  await s.commit("e");
  // Newcomers land under the non-blank node 11, which lists them as unmerged (so does the root).
  for (const name of ["x", "y"])
    await s.commit("a", [], { joiners: [{ name, kp: await keyPackage(s.cs, name) }] });
  // b's update path resets the root's list while node 11 keeps [5, 7].
  await s.commit("b");
  return s;
}
