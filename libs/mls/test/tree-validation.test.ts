// Our ratchet-tree validation (RFC 9420 §7.9.2, §12.4.3.1): accepts a valid tree with nested
// unmerged leaves that ts-mls 1.6.4 refuses, and refuses what the RFC says a joiner must refuse.
import type { ClientState, RatchetTree } from "ts-mls";
import { defaultClientConfig } from "ts-mls/clientConfig.js";
import { validateRatchetTree as tsMlsValidateRatchetTree } from "ts-mls/clientState.js";
import { beforeAll, describe, expect, it } from "vitest";
import { joinGroupFromWelcome } from "../src/client/join.js";
import { DuplicateLeafKeyError, InvalidTreeError } from "../src/public-group/errors.js";
import type { LeafCheckEnv } from "../src/public-group/leaf-validation.js";
import { validateRatchetTree } from "../src/tree-validation.js";
import { keyPackage, type Scenario } from "./support/harness.js";
import { groupBeforeNestedInvite, nestedUnmerged } from "./support/nested-unmerged.js";

let s: Scenario;
let state: ClientState;

function env(over: Partial<LeafCheckEnv["groupContext"]> = {}): LeafCheckEnv {
  return {
    groupContext: { ...state.groupContext, ...over },
    cs: s.cs,
    validateCredential: () => true,
    nowSeconds: BigInt(Math.floor(Date.now() / 1000)),
  };
}

function copy(tree: RatchetTree): RatchetTree {
  return structuredClone(tree);
}

function parentAt(tree: RatchetTree, i: number) {
  const node = tree[i];
  if (node?.nodeType !== "parent") throw new Error(`node ${i} is not a parent`);
  return node.parent;
}

function leafAt(tree: RatchetTree, leafIndex: number) {
  const node = tree[2 * leafIndex];
  if (node?.nodeType !== "leaf") throw new Error(`leaf ${leafIndex} is blank`);
  return node.leaf;
}

beforeAll(async () => {
  s = await groupBeforeNestedInvite();
  // After z's join, the members' tree has nested unmerged leaves.
  await s.commit("a", [], { joiners: [{ name: "z", kp: await keyPackage(s.cs, "z") }] });
  state = s.state("a");
  expect(nestedUnmerged(state).length).toBeGreaterThan(0);
}, 60_000);

describe("validateRatchetTree", () => {
  it("accepts a valid tree with nested unmerged leaves, which ts-mls 1.6.4's validator refuses", async () => {
    await expect(validateRatchetTree(state.ratchetTree, env())).resolves.toBeUndefined();
    const theirs = await tsMlsValidateRatchetTree(
      state.ratchetTree,
      state.groupContext,
      defaultClientConfig.lifetimeConfig,
      defaultClientConfig.authService,
      state.groupContext.treeHash,
      s.cs,
    );
    expect(theirs?.message).toMatch(/unmerged_leaves/);
  });

  it("refuses an unmerged leaf that is not below the parent listing it", async () => {
    const tree = copy(state.ratchetTree);
    const [parent] = nestedUnmerged(state)[0] ?? [];
    if (parent === undefined) throw new Error("no nested pair");
    parentAt(tree, parent).unmergedLeaves.push(0);
    await expect(validateRatchetTree(tree, env())).rejects.toThrow(/not below it/);
  });

  it("refuses an unmerged leaf that is blank or out of range", async () => {
    const tree = copy(state.ratchetTree);
    const [parent] = nestedUnmerged(state)[0] ?? [];
    if (parent === undefined) throw new Error("no nested pair");
    parentAt(tree, parent).unmergedLeaves.push(1000);
    await expect(validateRatchetTree(tree, env())).rejects.toThrow(/blank or out of range/);
  });

  it("refuses an ancestor listing an unmerged leaf that a non-blank node between them does not list", async () => {
    // Move the leaf from the parent's list to the ancestor's: the parent is then between them.
    const [pair] = nestedUnmerged(state);
    if (pair === undefined) throw new Error("no nested pair");
    const [parent, ancestor] = pair;
    const tree = copy(state.ratchetTree);
    const lower = parentAt(tree, parent);
    const upper = parentAt(tree, ancestor);
    const leaf = lower.unmergedLeaves.find((l) => !upper.unmergedLeaves.includes(l));
    if (leaf === undefined) throw new Error("no leaf to move");
    lower.unmergedLeaves = lower.unmergedLeaves.filter((l) => l !== leaf);
    upper.unmergedLeaves.push(leaf);
    await expect(validateRatchetTree(tree, env())).rejects.toThrow(/between them does not/);
  });

  it("refuses a tree whose hash differs from the GroupContext's", async () => {
    const treeHash = state.groupContext.treeHash.slice();
    treeHash[0] = (treeHash[0] ?? 0) ^ 1;
    await expect(validateRatchetTree(state.ratchetTree, env({ treeHash }))).rejects.toThrow(InvalidTreeError);
    await expect(validateRatchetTree(state.ratchetTree, env({ treeHash }))).rejects.toThrow(/tree hash/);
  });

  it("refuses a parent whose key does not match the parent hashes", async () => {
    const tree = copy(state.ratchetTree);
    const [parent] = nestedUnmerged(state)[0] ?? [];
    if (parent === undefined) throw new Error("no nested pair");
    const node = parentAt(tree, parent);
    node.hpkePublicKey = node.hpkePublicKey.slice();
    node.hpkePublicKey[0] = (node.hpkePublicKey[0] ?? 0) ^ 1;
    await expect(validateRatchetTree(tree, env())).rejects.toThrow(/parent hashes/);
  });

  it("refuses two leaves with the same signature key, or the same encryption key", async () => {
    const sig = copy(state.ratchetTree);
    leafAt(sig, 1).signaturePublicKey = leafAt(sig, 0).signaturePublicKey;
    await expect(validateRatchetTree(sig, env())).rejects.toThrow(DuplicateLeafKeyError);
    const hpke = copy(state.ratchetTree);
    leafAt(hpke, 2).hpkePublicKey = leafAt(hpke, 0).hpkePublicKey;
    await expect(validateRatchetTree(hpke, env())).rejects.toThrow(/share an HPKE encryption key/);
  });

  it("refuses a leaf whose signature does not verify, and a refused credential", async () => {
    const tree = copy(state.ratchetTree);
    const leaf = leafAt(tree, 1);
    leaf.signature = leaf.signature.slice();
    leaf.signature[0] = (leaf.signature[0] ?? 0) ^ 1;
    await expect(validateRatchetTree(tree, env())).rejects.toThrow(/signature does not verify/);
    await expect(
      validateRatchetTree(state.ratchetTree, { ...env(), validateCredential: () => false }),
    ).rejects.toThrow(/credential refused/);
  });

  it("refuses a node of the wrong kind for its position", async () => {
    const tree = copy(state.ratchetTree);
    tree[1] = tree[0];
    await expect(validateRatchetTree(tree, env())).rejects.toThrow(/at a parent position/);
  });

  it("is what joining from a Welcome runs: a tampered tree given out of band is refused", async () => {
    const kp = await keyPackage(s.cs, "w");
    const invite = await s.makeCommit("a", [], { joiners: [{ name: "w", kp }] });
    if (invite.welcome === undefined) throw new Error("no Welcome");
    const tree = copy(invite.newState.ratchetTree);
    leafAt(tree, 1).signaturePublicKey = leafAt(tree, 0).signaturePublicKey;
    await expect(
      joinGroupFromWelcome(invite.welcome, kp.publicPackage, kp.privatePackage, s.cs, tree),
    ).rejects.toThrow(DuplicateLeafKeyError);
    const joined = await joinGroupFromWelcome(
      invite.welcome,
      kp.publicPackage,
      kp.privatePackage,
      s.cs,
      invite.newState.ratchetTree,
    );
    expect(joined.groupContext.epoch).toBe(invite.newState.groupContext.epoch);
  });
});
