// Joining a group, from a Welcome (RFC 9420 §12.4.3.1) or by external commit (§12.4.3.2), built
// from ts-mls's exported building blocks. ts-mls's own joinGroup / joinGroupExternal run its
// validateRatchetTree, which (1.6.4) refuses valid trees with nested unmerged leaves; these run
// our validateRatchetTree instead.
import { bytesEqual } from "@phoenix/crypto";
import type {
  CiphersuiteImpl,
  ClientConfig,
  ClientState,
  GroupInfo,
  KeyPackage,
  PrivateKeyPackage,
  Proposal,
  PublicMessage,
  RatchetTree,
  Welcome,
} from "ts-mls";
import { defaultClientConfig } from "ts-mls/clientConfig.js";
import { exportSecret, nextEpochContext } from "ts-mls/clientState.js";
import { deriveSecret } from "ts-mls/crypto/kdf.js";
import { extensionsSupportedByCapabilities } from "ts-mls/extension.js";
import { createConfirmationTag, createContentCommitSignature } from "ts-mls/framedContent.js";
import {
  ratchetTreeFromExtension,
  verifyGroupInfoConfirmationTag,
  verifyGroupInfoSignature,
} from "ts-mls/groupInfo.js";
import { makeKeyPackageRef } from "ts-mls/keyPackage.js";
import { deriveKeySchedule, initializeEpoch } from "ts-mls/keySchedule.js";
import { protectPublicMessage } from "ts-mls/messageProtectionPublic.js";
import { getCommitSecret, pathToPathSecrets, pathToRoot } from "ts-mls/pathSecrets.js";
import {
  mergePrivateKeyPaths,
  type PrivateKeyPath,
  toPrivateKeyPath,
  updateLeafKey,
} from "ts-mls/privateKeyPath.js";
import { addLeafNode, findLeafIndex, removeLeafNode } from "ts-mls/ratchetTree.js";
import { createSecretTree } from "ts-mls/secretTree.js";
import { treeHashRoot } from "ts-mls/treeHash.js";
import { leafWidth, nodeToLeafIndex, toLeafIndex, toNodeIndex } from "ts-mls/treemath.js";
import { createUpdatePath, firstCommonAncestor } from "ts-mls/updatePath.js";
import { zeroOutUint8Array } from "ts-mls/util/byteArray.js";
import { decryptGroupInfo, decryptGroupSecrets } from "ts-mls/welcome.js";
import {
  BadGroupInfoSignatureError,
  CredentialRejectedError,
  UnknownSenderError,
} from "../public-group/errors.js";
import type { LeafCheckEnv } from "../public-group/leaf-validation.js";
import { validateRatchetTree } from "../tree-validation.js";

/** A Welcome or GroupInfo cannot be used to join (not for us, undecryptable, inconsistent, unsupported). */
export class JoinError extends Error {
  override name = "JoinError";
}

function nowSeconds(): bigint {
  return BigInt(Math.floor(Date.now() / 1000));
}

function treeOf(gi: GroupInfo, given: RatchetTree | undefined): RatchetTree {
  const tree = ratchetTreeFromExtension(gi) ?? given;
  if (tree === undefined)
    throw new JoinError("no ratchet tree: neither a ratchet_tree extension nor one given");
  return tree;
}

/**
 * The checks shared by both ways of joining: the GroupInfo is signed by a non-blank leaf whose
 * credential the authentication service accepts, and the tree is valid for the GroupContext.
 */
async function verifyGroupInfoAndTree(
  gi: GroupInfo,
  tree: RatchetTree,
  keyPackage: KeyPackage,
  cs: CiphersuiteImpl,
  config: ClientConfig,
): Promise<void> {
  if (gi.groupContext.cipherSuite !== keyPackage.cipherSuite || gi.groupContext.cipherSuite !== cs.name)
    throw new JoinError(
      `group uses ${gi.groupContext.cipherSuite}, the KeyPackage ${keyPackage.cipherSuite}`,
    );
  if (!extensionsSupportedByCapabilities(gi.groupContext.extensions, keyPackage.leafNode.capabilities))
    throw new JoinError("the KeyPackage does not support every GroupContext extension");
  const signer = tree[2 * gi.signer];
  if (signer?.nodeType !== "leaf")
    throw new UnknownSenderError(`GroupInfo signer ${gi.signer} is not a member of the tree`);
  if (!(await config.authService.validateCredential(signer.leaf.credential, signer.leaf.signaturePublicKey)))
    throw new CredentialRejectedError("GroupInfo signer's credential refused");
  if (!(await verifyGroupInfoSignature(gi, signer.leaf.signaturePublicKey, cs.signature)))
    throw new BadGroupInfoSignatureError("GroupInfo signature does not verify");
  const env: LeafCheckEnv = {
    groupContext: gi.groupContext,
    cs,
    nowSeconds: nowSeconds(),
    validateCredential: (credential, key) => config.authService.validateCredential(credential, key),
  };
  await validateRatchetTree(tree, env);
}

/**
 * Join from a Welcome (RFC 9420 §12.4.3.1) with our ratchet-tree validation. `ratchetTree` is used
 * when the GroupInfo has no ratchet_tree extension. PSKs (and so resumption) are not supported.
 */
export async function joinGroupFromWelcome(
  welcome: Welcome,
  keyPackage: KeyPackage,
  privateKeys: PrivateKeyPackage,
  cs: CiphersuiteImpl,
  ratchetTree?: RatchetTree,
  clientConfig: ClientConfig = defaultClientConfig,
): Promise<ClientState> {
  const ref = await makeKeyPackageRef(keyPackage, cs.hash);
  const initKey = await cs.hpke.importPrivateKey(privateKeys.initPrivateKey);
  const secrets = await decryptGroupSecrets(initKey, ref, welcome, cs.hpke);
  if (secrets === undefined) throw new JoinError("the Welcome has no group secrets for this KeyPackage");
  if (secrets.psks.length > 0)
    throw new JoinError("the Welcome needs pre-shared keys, which are not supported");
  const pskSecret = new Uint8Array(cs.kdf.size);
  const gi = await decryptGroupInfo(welcome, secrets.joinerSecret, pskSecret, cs);
  if (gi === undefined) throw new JoinError("the Welcome's GroupInfo does not decrypt");
  const tree = treeOf(gi, ratchetTree);
  await verifyGroupInfoAndTree(gi, tree, keyPackage, cs, clientConfig);

  const myLeaf = findLeafIndex(tree, keyPackage.leafNode);
  if (myLeaf === undefined) throw new JoinError("the tree has no leaf equal to the KeyPackage's leaf node");
  let privatePath: PrivateKeyPath = {
    leafIndex: myLeaf,
    privateKeys: { [2 * myLeaf]: privateKeys.hpkePrivateKey },
  };
  if (secrets.pathSecret !== undefined) {
    // The adder's path secret belongs to the lowest common ancestor of its leaf and ours; the
    // secrets above it follow by derivation, and each must give the public key the tree holds.
    const ancestor = firstCommonAncestor(tree, myLeaf, toLeafIndex(gi.signer));
    const pathSecrets = await pathToRoot(tree, ancestor, secrets.pathSecret, cs.kdf);
    for (const [index, secret] of Object.entries(pathSecrets)) {
      const node = tree[Number(index)];
      const pair = await cs.hpke.deriveKeyPair(await deriveSecret(secret, "node", cs.kdf));
      const pub = await cs.hpke.exportPublicKey(pair.publicKey);
      if (node?.nodeType !== "parent" || !bytesEqual(pub, node.parent.hpkePublicKey))
        throw new JoinError(`the Welcome's path secret does not match the tree at node ${index}`);
    }
    privatePath = mergePrivateKeyPaths(await toPrivateKeyPath(pathSecrets, myLeaf, cs), privatePath);
  }

  const [keySchedule, encryptionSecret] = await deriveKeySchedule(
    secrets.joinerSecret,
    pskSecret,
    gi.groupContext,
    cs.kdf,
  );
  if (!(await verifyGroupInfoConfirmationTag(gi, secrets.joinerSecret, pskSecret, cs)))
    throw new JoinError("the GroupInfo's confirmation tag does not verify");
  const secretTree = await createSecretTree(leafWidth(tree.length), encryptionSecret, cs.kdf);
  zeroOutUint8Array(encryptionSecret);
  zeroOutUint8Array(secrets.joinerSecret);
  return {
    groupContext: gi.groupContext,
    ratchetTree: tree,
    privatePath,
    signaturePrivateKey: privateKeys.signaturePrivateKey,
    confirmationTag: gi.confirmationTag,
    unappliedProposals: {},
    keySchedule,
    secretTree,
    historicalReceiverData: new Map(),
    groupActiveState: { kind: "active" },
    clientConfig,
  };
}

/**
 * Join by external commit (RFC 9420 §12.4.3.2) with our ratchet-tree validation. With `resync`,
 * the leaf whose signature key and credential equal the KeyPackage's is removed in the same commit.
 */
export async function joinGroupByExternalCommit(
  groupInfo: GroupInfo,
  keyPackage: KeyPackage,
  privateKeys: PrivateKeyPackage,
  resync: boolean,
  cs: CiphersuiteImpl,
  ratchetTree?: RatchetTree,
  clientConfig: ClientConfig = defaultClientConfig,
  authenticatedData: Uint8Array = new Uint8Array(0),
): Promise<{ publicMessage: PublicMessage; newState: ClientState }> {
  const externalPub = groupInfo.extensions.find((e) => e.extensionType === "external_pub");
  if (externalPub === undefined) throw new JoinError("the GroupInfo has no external_pub extension");
  const tree = treeOf(groupInfo, ratchetTree);
  await verifyGroupInfoAndTree(groupInfo, tree, keyPackage, cs, clientConfig);

  let base = tree;
  const proposals: Proposal[] = [];
  if (resync) {
    const former = tree.findIndex(
      (n) =>
        n?.nodeType === "leaf" &&
        clientConfig.keyPackageEqualityConfig.compareKeyPackageToLeafNode(keyPackage, n.leaf),
    );
    if (former < 0) throw new JoinError("resync: no leaf in the tree belongs to this client");
    const formerLeaf = nodeToLeafIndex(toNodeIndex(former));
    base = removeLeafNode(tree, formerLeaf);
    proposals.push({ proposalType: "remove", remove: { removed: formerLeaf } });
  }
  const { enc, secret: initSecret } = await exportSecret(externalPub.extensionData, cs);
  proposals.push({ proposalType: "external_init", externalInit: { kemOutput: enc } });

  const [withLeaf, leafNodeIndex] = addLeafNode(base, keyPackage.leafNode);
  const myLeaf = nodeToLeafIndex(leafNodeIndex);
  const [newTree, updatePath, pathSecrets, leafKey] = await createUpdatePath(
    withLeaf,
    myLeaf,
    groupInfo.groupContext,
    privateKeys.signaturePrivateKey,
    cs,
  );
  const privatePath = updateLeafKey(
    await toPrivateKeyPath(pathToPathSecrets(pathSecrets), myLeaf, cs),
    await cs.hpke.exportPrivateKey(leafKey),
  );
  const last = pathSecrets.at(-1);
  const commitSecret =
    last === undefined
      ? new Uint8Array(cs.kdf.size)
      : await getCommitSecret(newTree, toNodeIndex(last.nodeIndex), last.secret, cs.kdf);
  const { signature, framedContent } = await createContentCommitSignature(
    groupInfo.groupContext,
    "mls_public_message",
    {
      proposals: proposals.map((proposal) => ({ proposalOrRefType: "proposal", proposal })),
      path: updatePath,
    },
    { senderType: "new_member_commit" },
    authenticatedData,
    privateKeys.signaturePrivateKey,
    cs.signature,
  );
  const groupContext = await nextEpochContext(
    groupInfo.groupContext,
    "mls_public_message",
    framedContent,
    signature,
    await treeHashRoot(newTree, cs.hash),
    groupInfo.confirmationTag,
    cs.hash,
  );
  const epoch = await initializeEpoch(
    initSecret,
    commitSecret,
    groupContext,
    new Uint8Array(cs.kdf.size),
    cs.kdf,
  );
  const confirmationTag = await createConfirmationTag(
    epoch.keySchedule.confirmationKey,
    groupContext.confirmedTranscriptHash,
    cs.hash,
  );
  const publicMessage = await protectPublicMessage(
    epoch.keySchedule.membershipKey,
    groupContext,
    {
      content: framedContent,
      auth: { signature, confirmationTag, contentType: "commit" },
      wireformat: "mls_public_message",
    },
    cs,
  );
  const newState: ClientState = {
    ratchetTree: newTree,
    groupContext,
    secretTree: await createSecretTree(leafWidth(newTree.length), epoch.encryptionSecret, cs.kdf),
    privatePath,
    confirmationTag,
    historicalReceiverData: new Map(),
    signaturePrivateKey: privateKeys.signaturePrivateKey,
    keySchedule: epoch.keySchedule,
    unappliedProposals: {},
    groupActiveState: { kind: "active" },
    clientConfig,
  };
  zeroOutUint8Array(commitSecret);
  zeroOutUint8Array(initSecret);
  zeroOutUint8Array(epoch.encryptionSecret);
  zeroOutUint8Array(epoch.joinerSecret);
  return { publicMessage, newState };
}
