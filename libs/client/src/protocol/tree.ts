// Reading a ratchet tree's leaves: a leaf's MLS Basic identity is its Phoenix leaf credential.
import type { ClientState } from "ts-mls";

/** Leaf index → leaf credential bytes (MLS Basic identity) of every non-blank leaf. */
export function leafIdentities(state: ClientState): Map<number, Uint8Array> {
  return treeIdentities(state.ratchetTree);
}

/** {@link leafIdentities} of any ratchet tree (a retained epoch's, say). */
export function treeIdentities(tree: ClientState["ratchetTree"]): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  tree.forEach((node, i) => {
    if (i % 2 === 0 && node?.nodeType === "leaf" && node.leaf.credential.credentialType === "basic")
      out.set(i / 2, node.leaf.credential.identity);
  });
  return out;
}
