import {
  type CiphersuiteImpl,
  createCommit,
  createGroupInfoWithExternalPub,
  createProposal,
  generateKeyPackageWithKey,
  type KeyPackage,
  type PublicMessage,
} from "ts-mls";
import { signKeyPackage } from "ts-mls/keyPackage.js";
import { signLeafNodeKeyPackage } from "ts-mls/leafNode.js";
import { describe, expect, it } from "vitest";
import {
  BadGroupInfoSignatureError,
  BadKeyPackageSignatureError,
  BadSignatureError,
  BadUpdatePathError,
  CredentialRejectedError,
  DuplicateLeafKeyError,
  EmptyLeafRemovalError,
  ExpiredLeafNodeError,
  GroupInfoMismatchError,
  InvalidExternalCommitError,
  InvalidProposalError,
  MalformedMessageError,
  MissingUpdatePathError,
  TamperedAadError,
  UnknownProposalError,
  UnknownSenderError,
  UnsupportedProposalError,
  WrongEpochError,
  WrongGroupError,
} from "../src/public-group/errors.js";
import { parsePublicMessage } from "../src/public-group/messages.js";
import type { PublicGroupOptions } from "../src/public-group/public-group.js";
import { capabilities, identityOf, type Kp, keyPackage, Scenario, text } from "./support/harness.js";

/** alice, bob and carol in epoch 1. */
async function trio(options: Partial<PublicGroupOptions> = {}): Promise<Scenario> {
  const s = await Scenario.start("alice", options);
  const joiners = await Promise.all(
    ["bob", "carol"].map(async (name) => ({ name, kp: await keyPackage(s.cs, name) })),
  );
  await s.commit("alice", [], { joiners });
  return s;
}

/** Run a rejection and check the validator state did not change. */
async function rejects(s: Scenario, f: () => Promise<unknown>, error: new (...args: never[]) => Error) {
  const before = s.validator.encode();
  const err = await f().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(error);
  expect(s.validator.encode()).toEqual(before);
  return err as Error;
}

function flip(b: Uint8Array, i = 0): Uint8Array {
  const c = b.slice();
  c[i] = (c[i] ?? 0) ^ 1;
  return c;
}

/** A KeyPackage re-signed after changing its leaf's fields — what a malicious joiner can publish. */
async function resignedKeyPackage(
  cs: CiphersuiteImpl,
  kp: Kp,
  change: (leaf: KeyPackage["leafNode"]) => KeyPackage["leafNode"],
): Promise<KeyPackage> {
  const { signature: _leafSig, ...leafTbs } = change(kp.publicPackage.leafNode);
  const leafNode = await signLeafNodeKeyPackage(leafTbs, kp.privatePackage.signaturePrivateKey, cs.signature);
  const { signature: _kpSig, ...kpTbs } = kp.publicPackage;
  return signKeyPackage({ ...kpTbs, leafNode }, kp.privatePackage.signaturePrivateKey, cs.signature);
}

describe("PublicGroup refuses", () => {
  it("a commit for another group (WrongGroupError)", async () => {
    const s = await trio();
    const c = await s.makeCommit("bob");
    const msg = {
      ...c.message,
      content: { ...c.message.content, groupId: text.encode("other") },
    } as PublicMessage;
    await rejects(s, () => s.validator.stageCommit(msg), WrongGroupError);
  });

  it("a replayed commit of a past epoch (WrongEpochError)", async () => {
    const s = await trio();
    const c = await s.makeCommit("bob");
    await s.deliver(c);
    const err = await rejects(s, () => s.validator.stageCommit(c.message), WrongEpochError);
    expect(err).toMatchObject({ expected: 2n, actual: 1n });
  });

  it("a commit from a blank leaf (UnknownSenderError) and one claiming another member (BadSignatureError)", async () => {
    const s = await trio();
    const c = await s.makeCommit("bob");
    const blank = {
      ...c.message,
      content: { ...c.message.content, sender: { senderType: "member", leafIndex: 7 } },
    } as PublicMessage;
    await rejects(s, () => s.validator.stageCommit(blank), UnknownSenderError);
    const asCarol = {
      ...c.message,
      content: { ...c.message.content, sender: { senderType: "member", leafIndex: s.leafOf("carol") } },
    } as PublicMessage;
    const err = await rejects(s, () => s.validator.stageCommit(asCarol), BadSignatureError);
    expect(err).not.toBeInstanceOf(TamperedAadError);
  });

  it("a commit whose AAD was changed in transit (TamperedAadError)", async () => {
    const s = await trio();
    const c = await s.makeCommit("bob", [], { aad: text.encode("queue-config:1") });
    const msg = {
      ...c.message,
      content: { ...c.message.content, authenticatedData: text.encode("queue-config:2") },
    } as PublicMessage;
    const err = await rejects(s, () => s.validator.stageCommit(msg), TamperedAadError);
    expect(err).toBeInstanceOf(BadSignatureError);
  });

  it("a commit with a corrupted signature (BadSignatureError)", async () => {
    const s = await trio();
    const c = await s.makeCommit("bob");
    const msg = {
      ...c.message,
      auth: { ...c.message.auth, signature: flip(c.message.auth.signature, 5) },
    } as PublicMessage;
    await rejects(s, () => s.validator.stageCommit(msg), BadSignatureError);
  });

  it("removal of an empty leaf, as proposal and as commit (EmptyLeafRemovalError)", async () => {
    const s = await trio();
    const p = await createProposal(
      s.state("bob"),
      true,
      { proposalType: "remove", remove: { removed: 3 } },
      s.cs,
    );
    if (p.message.wireformat !== "mls_public_message") throw new Error("expected PublicMessage");
    const proposalMsg = p.message.publicMessage;
    await rejects(s, () => s.validator.processProposal(proposalMsg), EmptyLeafRemovalError);

    const c = await s.makeCommit("alice", [
      { proposalType: "remove", remove: { removed: s.leafOf("carol") } },
    ]);
    const content = c.message.content;
    if (content.contentType !== "commit") throw new Error("expected commit");
    const forged = await s.resign(
      c.message,
      {
        ...content,
        commit: {
          ...content.commit,
          proposals: [
            { proposalOrRefType: "proposal", proposal: { proposalType: "remove", remove: { removed: 3 } } },
          ],
        },
      },
      s.state("alice").signaturePrivateKey,
    );
    await rejects(s, () => s.validator.stageCommit(forged), EmptyLeafRemovalError);
  });

  it("an Add whose encryption key duplicates a member's, which ts-mls 1.6.4 accepts (DuplicateLeafKeyError)", async () => {
    const s = await trio();
    const bobLeaf = s.validator.leaf(s.leafOf("bob"));
    if (bobLeaf === undefined) throw new Error("no bob");
    const mallory = await keyPackage(s.cs, "mallory");
    const dup = await resignedKeyPackage(s.cs, mallory, (leaf) => ({
      ...leaf,
      hpkePublicKey: bobLeaf.hpkePublicKey,
    }));
    // The committing ts-mls client does not notice the duplicate…
    const res = await createCommit(
      { state: s.state("alice"), cipherSuite: s.cs },
      { wireAsPublicMessage: true, extraProposals: [{ proposalType: "add", add: { keyPackage: dup } }] },
    );
    if (res.commit.wireformat !== "mls_public_message") throw new Error("expected PublicMessage");
    const msg = res.commit.publicMessage;
    // …the validator does.
    const err = await rejects(s, () => s.validator.stageCommit(msg), DuplicateLeafKeyError);
    expect(err).toMatchObject({ keyKind: "encryption" });
  });

  it("an Add proposal reusing a member's signature key (DuplicateLeafKeyError)", async () => {
    const s = await trio();
    const bobLeaf = s.validator.leaf(s.leafOf("bob"));
    if (bobLeaf === undefined) throw new Error("no bob");
    const stolen = await generateKeyPackageWithKey(
      { credentialType: "basic", identity: text.encode("bob-2") },
      capabilities(),
      { notBefore: 0n, notAfter: 2n ** 62n },
      [],
      { signKey: s.state("bob").signaturePrivateKey, publicKey: bobLeaf.signaturePublicKey },
      s.cs,
    );
    const p = await createProposal(
      s.state("alice"),
      true,
      { proposalType: "add", add: { keyPackage: stolen.publicPackage } },
      s.cs,
    );
    if (p.message.wireformat !== "mls_public_message") throw new Error("expected PublicMessage");
    const msg = p.message.publicMessage;
    const err = await rejects(s, () => s.validator.processProposal(msg), DuplicateLeafKeyError);
    expect(err).toMatchObject({ keyKind: "signature" });
  });

  it("an Add whose KeyPackage was altered after signing (BadKeyPackageSignatureError)", async () => {
    const s = await trio();
    const erin = await keyPackage(s.cs, "erin");
    const c = await s.makeCommit("alice", [], { joiners: [{ name: "erin", kp: erin }] });
    const content = c.message.content;
    if (content.contentType !== "commit") throw new Error("expected commit");
    const tampered: KeyPackage = {
      ...erin.publicPackage,
      leafNode: {
        ...erin.publicPackage.leafNode,
        credential: { credentialType: "basic", identity: text.encode("admin") },
      },
    };
    const forged = await s.resign(
      c.message,
      {
        ...content,
        commit: {
          ...content.commit,
          proposals: [
            {
              proposalOrRefType: "proposal",
              proposal: { proposalType: "add", add: { keyPackage: tampered } },
            },
          ],
        },
      },
      s.state("alice").signaturePrivateKey,
    );
    await rejects(s, () => s.validator.stageCommit(forged), BadKeyPackageSignatureError);
  });

  it("a credential the callback refuses, on Add and on external join (CredentialRejectedError)", async () => {
    const s = await trio({ validateCredential: (cred) => identityOf(cred) !== "mallory" });
    const mallory = await keyPackage(s.cs, "mallory");
    const c = await s.makeCommit("alice", [], { joiners: [{ name: "mallory", kp: mallory }] });
    await rejects(s, () => s.validator.stageCommit(c.message), CredentialRejectedError);
    const ext = await s.makeExternalCommit("mallory", await keyPackage(s.cs, "mallory"), false);
    await rejects(s, () => s.validator.stageCommit(ext.message), CredentialRejectedError);
  });

  it("an expired KeyPackage (ExpiredLeafNodeError)", async () => {
    const nowSeconds = BigInt(Math.floor(Date.now() / 1000));
    const s = await trio({ now: () => Date.now() + 2 * 24 * 3600 * 1000 });
    const erin = await keyPackage(s.cs, "erin", {
      notBefore: nowSeconds - 60n,
      notAfter: nowSeconds + 3600n,
    });
    const c = await s.makeCommit("alice", [], { joiners: [{ name: "erin", kp: erin }] });
    await rejects(s, () => s.validator.stageCommit(c.message), ExpiredLeafNodeError);
  });

  it("a tampered UpdatePath: replaced node key or missing ciphertext (BadUpdatePathError)", async () => {
    const s = await trio();
    const c = await s.makeCommit("bob");
    const content = c.message.content;
    if (content.contentType !== "commit" || content.commit.path === undefined)
      throw new Error("expected commit with path");
    const path = content.commit.path;
    const [first, ...rest] = path.nodes;
    if (first === undefined) throw new Error("empty path");
    const bobKey = s.state("bob").signaturePrivateKey;

    const otherKey = await s.cs.hpke.exportPublicKey((await s.cs.hpke.generateKeyPair()).publicKey);
    const replaced = await s.resign(
      c.message,
      {
        ...content,
        commit: {
          ...content.commit,
          path: { ...path, nodes: [{ ...first, hpkePublicKey: otherKey }, ...rest] },
        },
      },
      bobKey,
    );
    const err = await rejects(s, () => s.validator.stageCommit(replaced), BadUpdatePathError);
    expect(err.message).toMatch(/parent hash/i);

    const dropped = await s.resign(
      c.message,
      {
        ...content,
        commit: {
          ...content.commit,
          path: {
            ...path,
            nodes: [{ ...first, encryptedPathSecret: first.encryptedPathSecret.slice(1) }, ...rest],
          },
        },
      },
      bobKey,
    );
    const err2 = await rejects(s, () => s.validator.stageCommit(dropped), BadUpdatePathError);
    expect(err2.message).toMatch(/ciphertexts/);
  });

  it("a remove commit stripped of its UpdatePath (MissingUpdatePathError)", async () => {
    const s = await trio();
    const c = await s.makeCommit("alice", [
      { proposalType: "remove", remove: { removed: s.leafOf("carol") } },
    ]);
    const content = c.message.content;
    if (content.contentType !== "commit") throw new Error("expected commit");
    const forged = await s.resign(
      c.message,
      { ...content, commit: { ...content.commit, path: undefined } },
      s.state("alice").signaturePrivateKey,
    );
    await rejects(s, () => s.validator.stageCommit(forged), MissingUpdatePathError);
  });

  it("a commit removing its own committer (InvalidProposalError)", async () => {
    const s = await trio();
    const c = await s.makeCommit("alice", [
      { proposalType: "remove", remove: { removed: s.leafOf("carol") } },
    ]);
    const content = c.message.content;
    if (content.contentType !== "commit") throw new Error("expected commit");
    const forged = await s.resign(
      c.message,
      {
        ...content,
        commit: {
          ...content.commit,
          proposals: [
            { proposalOrRefType: "proposal", proposal: { proposalType: "remove", remove: { removed: 0 } } },
          ],
        },
      },
      s.state("alice").signaturePrivateKey,
    );
    await rejects(s, () => s.validator.stageCommit(forged), InvalidProposalError);
  });

  it("a commit referencing a proposal the DS never saw (UnknownProposalError)", async () => {
    const s = await trio();
    const p = await createProposal(
      s.state("bob"),
      true,
      { proposalType: "remove", remove: { removed: s.leafOf("carol") } },
      s.cs,
    );
    if (p.message.wireformat !== "mls_public_message") throw new Error("expected PublicMessage");
    const { processPublicMessage, emptyPskIndex } = await import("ts-mls");
    s.members.set(
      "alice",
      (await processPublicMessage(s.state("alice"), p.message.publicMessage, emptyPskIndex, s.cs)).newState,
    );
    const c = await s.makeCommit("alice");
    await rejects(s, () => s.validator.stageCommit(c.message), UnknownProposalError);
  });

  it("an external commit that removes somebody else's leaf (InvalidExternalCommitError)", async () => {
    const s = await trio();
    const ext = await s.makeExternalCommit("erin", await keyPackage(s.cs, "erin"), false);
    const content = ext.message.content;
    if (content.contentType !== "commit") throw new Error("expected commit");
    const forged = await s.resign(
      ext.message,
      {
        ...content,
        commit: {
          ...content.commit,
          proposals: [
            {
              proposalOrRefType: "proposal",
              proposal: { proposalType: "remove", remove: { removed: s.leafOf("bob") } },
            },
            ...content.commit.proposals,
          ],
        },
      },
      ext.newState.signaturePrivateKey,
    );
    await rejects(s, () => s.validator.stageCommit(forged), InvalidExternalCommitError);
  });

  it("a PreSharedKey proposal (UnsupportedProposalError)", async () => {
    const s = await trio();
    const p = await createProposal(
      s.state("bob"),
      true,
      {
        proposalType: "psk",
        psk: {
          preSharedKeyId: { psktype: "external", pskId: text.encode("k"), pskNonce: new Uint8Array(32) },
        },
      },
      s.cs,
    );
    if (p.message.wireformat !== "mls_public_message") throw new Error("expected PublicMessage");
    const msg = p.message.publicMessage;
    await rejects(s, () => s.validator.processProposal(msg), UnsupportedProposalError);
  });

  it("a GroupInfo that does not match the commit, or is badly signed (GroupInfoMismatchError, BadGroupInfoSignatureError)", async () => {
    const s = await trio();
    const stale = await createGroupInfoWithExternalPub(s.state("bob"), [], s.cs);
    const c = await s.makeCommit("bob");
    const staged = await s.validator.stageCommit(c.message);
    await rejects(s, () => s.validator.verifyGroupInfo(staged, stale), GroupInfoMismatchError);
    const foreign = await createGroupInfoWithExternalPub(s.state("alice"), [], s.cs);
    await rejects(
      s,
      () => s.validator.verifyGroupInfo(staged, { ...foreign, groupContext: staged.groupContext }),
      GroupInfoMismatchError,
    );
    await rejects(
      s,
      () => s.validator.verifyGroupInfo(staged, { ...c.groupInfo, signature: flip(c.groupInfo.signature) }),
      BadGroupInfoSignatureError,
    );
    await s.validator.verifyGroupInfo(staged, c.groupInfo);
  });

  it("bytes that are not an MLS PublicMessage (MalformedMessageError)", () => {
    expect(() => parsePublicMessage(text.encode("definitely not mls"))).toThrow(MalformedMessageError);
  });
});
