// Fixes one check of ts-mls 1.6.4 in place after install (run by the root `postinstall`).
//
// validateRatchetTree (dist/src/clientState.js), run when a newcomer joins from a Welcome or by
// external commit, required every non-blank node on an unmerged leaf's direct path, up to the
// root, to list exactly the same unmerged leaves as the parent being checked. RFC 9420 §7.9.2
// asks less: the leaf must be a non-blank descendant of that parent, and every non-blank node
// strictly BETWEEN the leaf and the parent must list it. Valid trees with nested unmerged leaves
// (common after removes, adds and updates) were refused, so invitees could not join. No ts-mls
// release fixes it on the 1.x line; the 2.0 line has the correct check.
//
// The script is idempotent, touches only that block, and fails loudly when the installed
// ts-mls is not the expected code (e.g. after an upgrade: then delete this script).
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const pkgDir = join(root, "node_modules", "ts-mls");
const MARKER = "phoenix patch: RFC 9420 7.9.2 unmerged leaves";

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
const source = readFileSync(file, "utf8");
if (source.includes(MARKER)) {
  console.log("patch-ts-mls: already applied");
} else if (source.includes(BROKEN)) {
  writeFileSync(file, source.replace(BROKEN, FIXED));
  console.log("patch-ts-mls: fixed the unmerged-leaves check of validateRatchetTree");
} else {
  console.error("patch-ts-mls: validateRatchetTree is not the code this patch expects");
  process.exit(1);
}
