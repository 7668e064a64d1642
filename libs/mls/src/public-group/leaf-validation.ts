import { bytesEqual } from "@phoenix/crypto";
import type {
  CiphersuiteImpl,
  Credential,
  CredentialTypeName,
  GroupContext,
  KeyPackage,
  LeafNode,
  RatchetTree,
} from "ts-mls";
import { extensionsSupportedByCapabilities } from "ts-mls/extension.js";
import { verifyKeyPackage } from "ts-mls/keyPackage.js";
import { verifyLeafNodeSignature, verifyLeafNodeSignatureKeyPackage } from "ts-mls/leafNode.js";
import { decodeRequiredCapabilities } from "ts-mls/requiredCapabilities.js";
import { isLeaf, nodeToLeafIndex, toNodeIndex } from "ts-mls/treemath.js";
import {
  BadKeyPackageError,
  BadKeyPackageSignatureError,
  BadLeafNodeError,
  BadLeafSignatureError,
  CredentialRejectedError,
  DuplicateLeafKeyError,
  ExpiredLeafNodeError,
} from "./errors.js";

/** Where a leaf node being checked comes from. */
export type LeafContext = "key_package" | "update" | "commit" | "tree";

/**
 * Decides whether a leaf's credential is acceptable (e.g. the Phoenix leaf-credential check).
 * Return false to refuse; the validator then throws CredentialRejectedError.
 */
export type CredentialValidator = (
  credential: Credential,
  signaturePublicKey: Uint8Array,
  context: { source: LeafContext; leafIndex: number | undefined },
) => boolean | Promise<boolean>;

/** What leaf validation needs to know about the group. */
export interface LeafCheckEnv {
  groupContext: GroupContext;
  cs: CiphersuiteImpl;
  validateCredential: CredentialValidator;
  /** Current time in seconds since the epoch. */
  nowSeconds: bigint;
}

/** Credential types present in the tree and those every member supports (RFC 9420 §7.3). */
export interface CredentialSummary {
  inUse: Set<CredentialTypeName>;
  supportedByAll: Set<CredentialTypeName> | undefined;
}

/** Summarise the credential types of a tree, optionally ignoring some leaves (being replaced). */
export function summariseCredentials(
  tree: RatchetTree,
  ignoreLeaves: ReadonlySet<number> = new Set(),
): CredentialSummary {
  const inUse = new Set<CredentialTypeName>();
  let supportedByAll: Set<CredentialTypeName> | undefined;
  for (let i = 0; i < tree.length; i += 2) {
    const node = tree[i];
    if (node?.nodeType !== "leaf" || ignoreLeaves.has(i / 2)) continue;
    inUse.add(node.leaf.credential.credentialType);
    const supported = new Set(node.leaf.capabilities.credentials);
    supportedByAll =
      supportedByAll === undefined ? supported : new Set([...supportedByAll].filter((c) => supported.has(c)));
  }
  return { inUse, supportedByAll };
}

/**
 * RFC 9420 §7.3 leaf node validation, except key uniqueness (checked against the whole
 * resulting tree by {@link assertUniqueKeys}).
 */
export async function validateLeafNode(
  env: LeafCheckEnv,
  leaf: LeafNode,
  source: LeafContext,
  leafIndex: number | undefined,
  creds: CredentialSummary,
  extensionsToSupport: GroupContext["extensions"] = env.groupContext.extensions,
): Promise<void> {
  const where = leafIndex === undefined ? "new leaf" : `leaf ${leafIndex}`;
  if (source !== "tree" && leaf.leafNodeSource !== source)
    throw new BadLeafNodeError(`${where}: leaf_node_source is ${leaf.leafNodeSource}, expected ${source}`);

  if (leaf.leafNodeSource === "key_package") {
    if (!(await verifyLeafNodeSignatureKeyPackage(leaf, env.cs.signature)))
      throw new BadKeyPackageSignatureError(`${where}: KeyPackage leaf node signature does not verify`);
    if (
      source !== "tree" &&
      (leaf.lifetime.notBefore > env.nowSeconds || leaf.lifetime.notAfter < env.nowSeconds)
    )
      throw new ExpiredLeafNodeError(`${where}: current time is outside the leaf node's lifetime`);
  } else {
    if (leafIndex === undefined)
      throw new BadLeafNodeError("leaf index needed to verify the leaf node signature");
    if (!(await verifyLeafNodeSignature(leaf, env.groupContext.groupId, leafIndex, env.cs.signature)))
      throw new BadLeafSignatureError(`${where}: leaf node signature does not verify`);
  }

  const required = env.groupContext.extensions.find((e) => e.extensionType === "required_capabilities");
  if (required !== undefined) {
    const decoded = decodeRequiredCapabilities(required.extensionData, 0);
    if (decoded === undefined)
      throw new BadLeafNodeError("group has an undecodable required_capabilities extension");
    const caps = decoded[0];
    const ok =
      caps.credentialTypes.every((c) => leaf.capabilities.credentials.includes(c)) &&
      caps.extensionTypes.every((e) => leaf.capabilities.extensions.includes(e)) &&
      caps.proposalTypes.every((p) => leaf.capabilities.proposals.includes(p));
    if (!ok) throw new BadLeafNodeError(`${where}: does not support the group's required capabilities`);
  }
  if (!extensionsSupportedByCapabilities(leaf.extensions, leaf.capabilities))
    throw new BadLeafNodeError(`${where}: carries an extension its capabilities do not list`);
  if (source === "key_package" && !extensionsSupportedByCapabilities(extensionsToSupport, leaf.capabilities))
    throw new BadLeafNodeError(`${where}: does not support every GroupContext extension`);
  for (const type of creds.inUse) {
    if (!leaf.capabilities.credentials.includes(type))
      throw new BadLeafNodeError(`${where}: does not support credential type ${type} used in the group`);
  }
  if (creds.supportedByAll !== undefined && !creds.supportedByAll.has(leaf.credential.credentialType))
    throw new BadLeafNodeError(
      `${where}: credential type ${leaf.credential.credentialType} is not supported by all members`,
    );

  const accepted = await env.validateCredential(leaf.credential, leaf.signaturePublicKey, {
    source,
    leafIndex,
  });
  if (!accepted) throw new CredentialRejectedError(`${where}: credential refused`);
}

/** RFC 9420 §12.2 KeyPackage validation for an Add proposal (key uniqueness excepted). */
export async function validateKeyPackage(
  env: LeafCheckEnv,
  kp: KeyPackage,
  creds: CredentialSummary,
  extensionsToSupport: GroupContext["extensions"] = env.groupContext.extensions,
): Promise<void> {
  if (kp.cipherSuite !== env.groupContext.cipherSuite)
    throw new BadKeyPackageError(`KeyPackage ciphersuite ${kp.cipherSuite} differs from the group's`);
  if (kp.version !== env.groupContext.version)
    throw new BadKeyPackageError("KeyPackage protocol version differs");
  if (!(await verifyKeyPackage(kp, env.cs.signature)))
    throw new BadKeyPackageSignatureError("KeyPackage signature does not verify");
  if (bytesEqual(kp.initKey, kp.leafNode.hpkePublicKey))
    throw new BadKeyPackageError("KeyPackage init key equals its leaf encryption key");
  await validateLeafNode(env, kp.leafNode, "key_package", undefined, creds, extensionsToSupport);
}

function keyId(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("latin1");
}

/**
 * Every HPKE encryption key (leaves and parents) and every signature key (leaves) must occur
 * once in the tree. ts-mls 1.6.4 lets an Add reuse a member's encryption key; this catches it.
 */
export function assertUniqueKeys(tree: RatchetTree): void {
  const encryption = new Map<string, number>();
  const signature = new Map<string, number>();
  for (let i = 0; i < tree.length; i++) {
    const node = tree[i];
    if (node === undefined) continue;
    const hpke = node.nodeType === "leaf" ? node.leaf.hpkePublicKey : node.parent.hpkePublicKey;
    const id = keyId(hpke);
    const seen = encryption.get(id);
    if (seen !== undefined)
      throw new DuplicateLeafKeyError("encryption", `nodes ${seen} and ${i} share an HPKE encryption key`);
    encryption.set(id, i);
    if (node.nodeType === "leaf") {
      const sid = keyId(node.leaf.signaturePublicKey);
      const seenSig = signature.get(sid);
      if (seenSig !== undefined)
        throw new DuplicateLeafKeyError(
          "signature",
          `leaves ${seenSig / 2} and ${i / 2} share a signature key`,
        );
      signature.set(sid, i);
    }
  }
}

/** Refuse a new leaf whose encryption or signature key already appears in the tree. */
export function assertLeafKeysFresh(tree: RatchetTree, leaf: LeafNode, replacingLeafIndex?: number): void {
  for (let i = 0; i < tree.length; i++) {
    const node = tree[i];
    if (node === undefined) continue;
    const replaced = isLeaf(toNodeIndex(i)) && nodeToLeafIndex(toNodeIndex(i)) === replacingLeafIndex;
    const hpke = node.nodeType === "leaf" ? node.leaf.hpkePublicKey : node.parent.hpkePublicKey;
    if (bytesEqual(hpke, leaf.hpkePublicKey))
      throw new DuplicateLeafKeyError("encryption", `encryption key already used by node ${i}`);
    if (
      node.nodeType === "leaf" &&
      !replaced &&
      bytesEqual(node.leaf.signaturePublicKey, leaf.signaturePublicKey)
    )
      throw new DuplicateLeafKeyError("signature", `signature key already used by leaf ${i / 2}`);
  }
}
