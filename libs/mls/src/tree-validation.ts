// RFC 9420 §7.9.2 / §12.4.3.1 integrity of a ratchet tree received from someone else (a joiner's
// tree, the DS validator's starting tree). Written here rather than taken from ts-mls 1.6.4,
// whose validateRatchetTree refuses valid trees with nested unmerged leaves.
import { bytesEqual } from "@phoenix/crypto";
import type { RatchetTree } from "ts-mls";
import { verifyParentHashes } from "ts-mls/parentHash.js";
import { treeHashRoot } from "ts-mls/treeHash.js";
import { directPath, leafToNodeIndex, leafWidth, toLeafIndex, toNodeIndex } from "ts-mls/treemath.js";
import { InvalidTreeError } from "./public-group/errors.js";
import {
  assertUniqueKeys,
  type LeafCheckEnv,
  summariseCredentials,
  validateLeafNode,
} from "./public-group/leaf-validation.js";

/**
 * Structure of the array form: a tree of odd length with at least one member, leaves at even and
 * parents at odd indices. (Trailing blanks are the decoder's business: ts-mls keeps them in
 * memory, and trees built in memory legitimately end blank.)
 */
function assertStructure(tree: RatchetTree): void {
  if (tree.length === 0 || tree.length % 2 === 0)
    throw new InvalidTreeError(`a ratchet tree has an odd number of nodes, got ${tree.length}`);
  if (!tree.some((n) => n?.nodeType === "leaf")) throw new InvalidTreeError("ratchet tree has no member");
  for (let i = 0; i < tree.length; i++) {
    const node = tree[i];
    if (node !== undefined && (i % 2 === 0) !== (node.nodeType === "leaf"))
      throw new InvalidTreeError(
        `node ${i} is a ${node.nodeType} node at a ${i % 2 === 0 ? "leaf" : "parent"} position`,
      );
  }
}

/**
 * Every entry of a parent's unmerged_leaves is a non-blank leaf below that parent, and every
 * non-blank node strictly between that leaf and the parent lists it too (RFC 9420 §7.9.2).
 * Nodes above the parent are free to list other leaves: a committer's UpdatePath resets the
 * lists on its own direct path only.
 */
export function assertUnmergedLeaves(tree: RatchetTree): void {
  const width = leafWidth(tree.length);
  for (let i = 1; i < tree.length; i += 2) {
    const node = tree[i];
    if (node?.nodeType !== "parent") continue;
    const seen = new Set<number>();
    for (const leaf of node.parent.unmergedLeaves) {
      if (seen.has(leaf)) throw new InvalidTreeError(`parent ${i} lists unmerged leaf ${leaf} twice`);
      seen.add(leaf);
      if (leaf >= width || tree[2 * leaf]?.nodeType !== "leaf")
        throw new InvalidTreeError(`parent ${i} lists unmerged leaf ${leaf}, which is blank or out of range`);
      const path = directPath(leafToNodeIndex(toLeafIndex(leaf)), width);
      const at = path.indexOf(toNodeIndex(i));
      if (at < 0)
        throw new InvalidTreeError(`parent ${i} lists unmerged leaf ${leaf}, which is not below it`);
      for (const between of path.slice(0, at)) {
        const mid = tree[between];
        if (mid?.nodeType === "parent" && !mid.parent.unmergedLeaves.includes(leaf))
          throw new InvalidTreeError(
            `parent ${i} lists unmerged leaf ${leaf} but node ${between} between them does not`,
          );
      }
    }
  }
}

/**
 * Verify a ratchet tree as a joiner must before using it (RFC 9420 §12.4.3.1): structure, unique
 * encryption and signature keys, every leaf node (§7.3, with the group's credential types),
 * unmerged leaves, parent hashes, and the tree hash against `env.groupContext.treeHash`.
 * Throws a PublicGroupError subclass (InvalidTreeError, DuplicateLeafKeyError, …) naming the rule.
 */
export async function validateRatchetTree(tree: RatchetTree, env: LeafCheckEnv): Promise<void> {
  assertStructure(tree);
  assertUniqueKeys(tree);
  const creds = summariseCredentials(tree);
  for (let i = 0; i < tree.length; i += 2) {
    const node = tree[i];
    if (node?.nodeType === "leaf") await validateLeafNode(env, node.leaf, "tree", i / 2, creds);
  }
  assertUnmergedLeaves(tree);
  if (!(await verifyParentHashes(tree, env.cs.hash)))
    throw new InvalidTreeError("parent hashes do not verify");
  if (!bytesEqual(await treeHashRoot(tree, env.cs.hash), env.groupContext.treeHash))
    throw new InvalidTreeError("tree hash differs from the GroupContext's");
}
