// Fixes two checks of ts-mls 1.6.4 in place after install (run by the root `postinstall`), both in
// dist/src/clientState.js. No ts-mls release fixes them on the 1.x line.
//
// 1. validateRatchetTree, run when a newcomer joins from a Welcome or by external commit, required
//    every non-blank node on an unmerged leaf's direct path, up to the root, to list exactly the
//    same unmerged leaves as the parent being checked. RFC 9420 §7.9.2 asks less: the leaf must be
//    a non-blank descendant of that parent, and every non-blank node strictly BETWEEN the leaf and
//    the parent must list it. Valid trees with nested unmerged leaves (common after removes, adds
//    and updates) were refused, so invitees could not join. The 2.0 line has the correct check.
// 2. applyProposals decided whether a commit removes the receiving member by looking at its leaf
//    AFTER all proposals: blank means removed. Removes apply before Adds, so when the same commit
//    adds a joiner on the leaf it just blanked (a pending self-remove committed together with an
//    invitation), the removed member saw its leaf occupied, tried to decrypt the UpdatePath with
//    keys it no longer has, and failed ("No overlap between provided private keys and update
//    path"). The member is removed exactly when a Remove proposal names its leaf.
//
// The script is idempotent, touches only those blocks, and fails loudly when the installed
// ts-mls is not the expected code (e.g. after an upgrade: then delete this script).
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const pkgDir = join(root, "node_modules", "ts-mls");
const MARKER = "phoenix patch: RFC 9420 7.9.2 unmerged leaves";
const REMOVED_MARKER = "phoenix patch: removed when a Remove names the leaf";

const BROKEN = `            for (const unmergedLeaf of n.parent.unmergedLeaves) {
                const leafIndex = toLeafIndex(unmergedLeaf);
                const dp = directPath(leafToNodeIndex(leafIndex), leafWidth(tree.length));
                const nodeIndex = leafToNodeIndex(leafIndex);
                if (tree[nodeIndex]?.nodeType !== "leaf" && !dp.includes(toNodeIndex(i)))
                    return new ValidationError("Unmerged leaf did not represent a non-blank descendant leaf node");
                for (const parentIdx of dp) {
                    const dpNode = tree[parentIdx];
                    if (dpNode !== undefined) {
                        if (dpNode.nodeType !== "parent")
                            return new InternalError("Expected parent node");
                        if (!arraysEqual(dpNode.parent.unmergedLeaves, n.parent.unmergedLeaves))
                            return new ValidationError("non-blank intermediate node must list leaf node in its unmerged_leaves");
                    }
                }
            }`;

const REMOVED_BROKEN = `        const selfRemoved = mutatedTree[leafToNodeIndex(toLeafIndex(state.privatePath.leafIndex))] === undefined;`;

const REMOVED_FIXED = `        // ${REMOVED_MARKER} (scripts/patch-ts-mls.mjs)
        const selfRemoved = grouped.remove.some(({ proposal }) => proposal.remove.removed === state.privatePath.leafIndex);`;

const FIXED = `            // ${MARKER} (scripts/patch-ts-mls.mjs)
            for (const unmergedLeaf of n.parent.unmergedLeaves) {
                const leafIndex = toLeafIndex(unmergedLeaf);
                const dp = directPath(leafToNodeIndex(leafIndex), leafWidth(tree.length));
                const nodeIndex = leafToNodeIndex(leafIndex);
                if (tree[nodeIndex]?.nodeType !== "leaf" || !dp.includes(toNodeIndex(i)))
                    return new ValidationError("Unmerged leaf did not represent a non-blank descendant leaf node");
                for (const parentIdx of dp) {
                    if (parentIdx === toNodeIndex(i))
                        break;
                    const dpNode = tree[parentIdx];
                    if (dpNode !== undefined) {
                        if (dpNode.nodeType !== "parent")
                            return new InternalError("Expected parent node");
                        if (!dpNode.parent.unmergedLeaves.includes(unmergedLeaf))
                            return new ValidationError("non-blank intermediate node must list leaf node in its unmerged_leaves");
                    }
                }
            }`;

let version;
try {
  version = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")).version;
} catch {
  console.log("patch-ts-mls: ts-mls is not installed here; nothing to patch");
  process.exit(0);
}
if (version !== "1.6.4") {
  console.error(
    `patch-ts-mls: expected ts-mls 1.6.4, found ${version}: check whether the fix is still needed`,
  );
  process.exit(1);
}
const file = join(pkgDir, "dist", "src", "clientState.js");
let source = readFileSync(file, "utf8");
const patches = [
  { marker: MARKER, broken: BROKEN, fixed: FIXED, what: "the unmerged-leaves check of validateRatchetTree" },
  {
    marker: REMOVED_MARKER,
    broken: REMOVED_BROKEN,
    fixed: REMOVED_FIXED,
    what: "the self-removal check of applyProposals",
  },
];
let failed = false;
for (const patch of patches) {
  if (source.includes(patch.marker)) {
    console.log(`patch-ts-mls: ${patch.what}: already applied`);
  } else if (source.includes(patch.broken)) {
    source = source.replace(patch.broken, patch.fixed);
    console.log(`patch-ts-mls: fixed ${patch.what}`);
  } else {
    console.error(`patch-ts-mls: ${patch.what} is not the code this patch expects`);
    failed = true;
  }
}
if (failed) process.exit(1);
writeFileSync(file, source);
