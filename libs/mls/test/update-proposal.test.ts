import type { LeafNodeUpdate } from "ts-mls";
import { signWithLabel } from "ts-mls/crypto/signature.js";
import { encodeLeafNodeTBS } from "ts-mls/leafNode.js";
import { describe, expect, it } from "vitest";
import { BadLeafSignatureError } from "../src/public-group/errors.js";
import { keyPackage, Scenario } from "./support/harness.js";

/** Build and sign an Update proposal's leaf node for a member (ts-mls 1.6.4 has no helper for it). */
async function updateLeaf(
  s: Scenario,
  name: string,
): Promise<{ leaf: LeafNodeUpdate; hpkePrivate: Uint8Array }> {
  const st = s.state(name);
  const leafIndex = st.privatePath.leafIndex;
  const current = s.validator.leaf(leafIndex);
  if (current === undefined) throw new Error("no leaf");
  const pair = await s.cs.hpke.generateKeyPair();
  const tbs = {
    hpkePublicKey: await s.cs.hpke.exportPublicKey(pair.publicKey),
    signaturePublicKey: current.signaturePublicKey,
    credential: current.credential,
    capabilities: current.capabilities,
    leafNodeSource: "update" as const,
    extensions: current.extensions,
    groupId: st.groupContext.groupId,
    leafIndex,
  };
  const signature = await signWithLabel(
    st.signaturePrivateKey,
    "LeafNodeTBS",
    encodeLeafNodeTBS(tbs),
    s.cs.signature,
  );
  const { groupId: _g, leafIndex: _l, ...leafFields } = tbs;
  return {
    leaf: { ...leafFields, signature },
    hpkePrivate: await s.cs.hpke.exportPrivateKey(pair.privateKey),
  };
}

describe("PublicGroup and Update proposals", () => {
  it("applies an Update proposal committed by another member, in step with the members", async () => {
    const s = await Scenario.start("alice");
    const joiners = await Promise.all(
      ["bob", "carol"].map(async (name) => ({ name, kp: await keyPackage(s.cs, name) })),
    );
    await s.commit("alice", [], { joiners });

    const { leaf, hpkePrivate } = await updateLeaf(s, "bob");
    const accepted = await s.propose("bob", { proposalType: "update", update: { leafNode: leaf } });
    expect(accepted.senderLeafIndex).toBe(1);
    // Bob keeps the private key of his new leaf, as an Update sender must.
    const bob = s.state("bob");
    bob.privatePath.privateKeys[2 * bob.privatePath.leafIndex] = hpkePrivate;

    const staged = await s.commit("carol");
    expect(staged.updated).toEqual([1]);
    expect(s.validator.leaf(1)?.hpkePublicKey).toEqual(leaf.hpkePublicKey);
  });

  it("refuses an Update whose leaf is signed for another leaf index (BadLeafSignatureError)", async () => {
    const s = await Scenario.start("alice");
    await s.commit("alice", [], { joiners: [{ name: "bob", kp: await keyPackage(s.cs, "bob") }] });
    const { leaf } = await updateLeaf(s, "bob");
    const { createProposal } = await import("ts-mls");
    // Alice replays bob's signed leaf as her own Update: the leaf signature covers bob's index.
    const p = await createProposal(
      s.state("alice"),
      true,
      { proposalType: "update", update: { leafNode: leaf } },
      s.cs,
    );
    if (p.message.wireformat !== "mls_public_message") throw new Error("expected PublicMessage");
    const msg = p.message.publicMessage;
    await expect(s.validator.processProposal(msg)).rejects.toBeInstanceOf(BadLeafSignatureError);
  });
});
