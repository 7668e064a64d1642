import { bytesEqual } from "@phoenix/crypto";
import type {
  CiphersuiteImpl,
  Credential,
  Extension,
  GroupContext,
  GroupInfo,
  KeyPackage,
  LeafNode,
  Proposal,
  PublicMessage,
  RatchetTree,
  Sender,
} from "ts-mls";
import { makeProposalRef } from "ts-mls/authenticatedContent.js";
import { nextEpochContext } from "ts-mls/clientState.js";
import { encodeCredential } from "ts-mls/credential.js";
import { extensionsSupportedByCapabilities } from "ts-mls/extension.js";
import { verifyFramedContentSignature } from "ts-mls/framedContent.js";
import { encodeGroupContext } from "ts-mls/groupContext.js";
import { ratchetTreeFromExtension, verifyGroupInfoSignature } from "ts-mls/groupInfo.js";
import { senderFromExtension } from "ts-mls/publicMessage.js";
import {
  addLeafNode,
  decodeRatchetTree,
  filteredDirectPathAndCopathResolution,
  findBlankLeafNodeIndexOrExtend,
  removeLeafNode,
  updateLeafNode,
} from "ts-mls/ratchetTree.js";
import { treeHashRoot } from "ts-mls/treeHash.js";
import { leafToNodeIndex, nodeToLeafIndex, toLeafIndex } from "ts-mls/treemath.js";
import { applyUpdatePath } from "ts-mls/updatePath.js";
import { validateRatchetTree } from "../tree-validation.js";
import {
  BadGroupInfoSignatureError,
  BadSignatureError,
  BadUpdatePathError,
  EmptyLeafRemovalError,
  GroupInfoMismatchError,
  InvalidExternalCommitError,
  InvalidProposalError,
  InvalidTreeError,
  MissingUpdatePathError,
  PublicGroupError,
  TamperedAadError,
  UnexpectedContentError,
  UnknownProposalError,
  UnknownSenderError,
  UnsupportedProposalError,
  WrongEpochError,
  WrongGroupError,
} from "./errors.js";
import {
  assertLeafKeysFresh,
  assertUniqueKeys,
  type CredentialSummary,
  type CredentialValidator,
  type LeafCheckEnv,
  summariseCredentials,
  validateKeyPackage,
  validateLeafNode,
} from "./leaf-validation.js";
import {
  decodePublicGroupState,
  encodedTree,
  encodePublicGroupState,
  type PendingProposal,
  type PublicGroupState,
} from "./state-codec.js";

/** Configuration of a {@link PublicGroup}. */
export interface PublicGroupOptions {
  /** Ciphersuite implementation (e.g. from the node:crypto provider). */
  cipherSuite: CiphersuiteImpl;
  /** Checks every new leaf's credential (Phoenix: the leaf-credential check of libs/crypto). */
  validateCredential: CredentialValidator;
  /** Clock in milliseconds, for KeyPackage lifetimes; default Date.now. */
  now?: () => number;
  /**
   * How many trees of past epochs in which members joined to keep for late joiners, when
   * {@link PublicGroup.merge} is called without a `keep` predicate: the most recent ones; default 4.
   */
  retainedTrees?: number;
  /**
   * Hard cap on retained trees when {@link PublicGroup.merge} is given a `keep` predicate: if more
   * epochs are still needed, the oldest are dropped first; default 32.
   */
  maxRetainedTrees?: number;
}

/** How {@link PublicGroup.merge} retains trees of earlier epochs in which members were added. */
export interface MergeOptions {
  /**
   * Which earlier retained epochs are still needed (e.g. joiners that have not fetched the tree
   * yet). Needed trees are kept, unneeded ones dropped, bounded by `maxRetainedTrees` (oldest
   * dropped first). The new epoch's tree is always retained when the commit adds members.
   * Without it, the last `retainedTrees` trees are kept.
   */
  keep?: (epoch: bigint) => boolean;
}

/** A proposal the validator accepted and stored for this epoch. */
export interface AcceptedProposal {
  /** ProposalRef (RFC 9420 §5.2) a commit uses to include it by reference. */
  ref: Uint8Array;
  proposal: Proposal;
  sender: Sender;
  /** The sender's leaf index when the sender is a member. */
  senderLeafIndex: number | undefined;
  /** The framed content's authenticated data. */
  aad: Uint8Array;
}

/** A member a commit adds. */
export interface AddedMember {
  leafIndex: number;
  keyPackage: KeyPackage;
  credential: Credential;
}

/** A member a commit removes (as it was before the commit). */
export interface RemovedMember {
  leafIndex: number;
  credential: Credential;
  signaturePublicKey: Uint8Array;
}

/** Who sent a commit. For an external commit the leaf index is the joiner's new leaf. */
export interface CommitSender {
  kind: "member" | "new_member_commit";
  leafIndex: number;
  credential: Credential;
  signaturePublicKey: Uint8Array;
}

/** One proposal a commit applies, with its origin. */
export interface AppliedProposal {
  proposal: Proposal;
  /** The proposer's leaf index (the committer for proposals by value); undefined for non-members. */
  senderLeafIndex: number | undefined;
  byReference: boolean;
}

/**
 * A validated commit, not yet merged: the DS checks its Phoenix rules on it and the
 * committer's GroupInfo, then calls {@link PublicGroup.merge}.
 */
export interface StagedCommit {
  /** Epoch the commit was sent in. */
  readonly epoch: bigint;
  /** Epoch after the commit. */
  readonly newEpoch: bigint;
  readonly sender: CommitSender;
  /** True for a commit by a non-member (external join or resync). */
  readonly external: boolean;
  /** True for an external commit that removes the sender's own previous leaf. */
  readonly resync: boolean;
  readonly added: readonly AddedMember[];
  readonly removed: readonly RemovedMember[];
  /** Leaf indices whose leaf was replaced by an Update proposal. */
  readonly updated: readonly number[];
  readonly proposals: readonly AppliedProposal[];
  /** The new GroupContext extensions when the commit changes them. */
  readonly newExtensions: readonly Extension[] | undefined;
  readonly hasPath: boolean;
  readonly aad: Uint8Array;
  readonly groupContext: GroupContext;
  readonly tree: RatchetTree;
  readonly confirmationTag: Uint8Array;
}

const WIREFORMAT = "mls_public_message" as const;

function leafAt(tree: RatchetTree, leafIndex: number): LeafNode | undefined {
  if (!Number.isInteger(leafIndex) || leafIndex < 0) return undefined;
  const node = tree[leafIndex * 2];
  return node?.nodeType === "leaf" ? node.leaf : undefined;
}

function groupContextBytesEqual(a: GroupContext, b: GroupContext): boolean {
  return bytesEqual(encodeGroupContext(a), encodeGroupContext(b));
}

async function rethrowAs<T>(
  make: (message: string) => PublicGroupError,
  f: () => Promise<T> | T,
): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof PublicGroupError) throw e;
    throw make((e as Error).message);
  }
}

function assertSupportedProposal(p: Proposal): void {
  if (typeof p.proposalType === "number")
    throw new UnsupportedProposalError(`custom proposal type ${p.proposalType} is not allowed`);
  if (p.proposalType === "psk") throw new UnsupportedProposalError("PreSharedKey proposals are not allowed");
  if (p.proposalType === "reinit") throw new UnsupportedProposalError("ReInit proposals are not allowed");
}

type CommitContent = Extract<PublicMessage["content"], { contentType: "commit" }>;
type Commit = CommitContent["commit"];
type UpdatePath = NonNullable<Commit["path"]>;

/** A commit's proposals sorted by type. */
interface ProposalsByType {
  adds: AppliedProposal[];
  updates: AppliedProposal[];
  removes: AppliedProposal[];
  gces: AppliedProposal[];
  inits: AppliedProposal[];
}

/** The tree and membership changes after a commit's proposals, before its UpdatePath. */
interface ProposalOutcome {
  tree: RatchetTree;
  newExtensions: Extension[] | undefined;
  added: AddedMember[];
  removed: RemovedMember[];
  updated: number[];
  /** The committer's leaf; for an external commit the blank leaf the joiner takes. */
  committerLeafIndex: number;
  resync: boolean;
}

function sortProposals(applied: readonly AppliedProposal[]): ProposalsByType {
  return {
    adds: applied.filter((a) => a.proposal.proposalType === "add"),
    updates: applied.filter((a) => a.proposal.proposalType === "update"),
    removes: applied.filter((a) => a.proposal.proposalType === "remove"),
    gces: applied.filter((a) => a.proposal.proposalType === "group_context_extensions"),
    inits: applied.filter((a) => a.proposal.proposalType === "external_init"),
  };
}

/** RFC 9420 §12.2: which proposal lists a member's commit may carry. */
function checkMemberProposalList(byType: ProposalsByType, committerIndex: number): void {
  if (byType.inits.length > 0) throw new InvalidProposalError("a member commit cannot contain ExternalInit");
  for (const u of byType.updates) {
    if (!u.byReference) throw new InvalidProposalError("Update proposals cannot be committed by value");
    if (u.senderLeafIndex === committerIndex)
      throw new InvalidProposalError("a commit cannot contain an Update proposal from the committer");
  }
  if (byType.gces.length > 1)
    throw new InvalidProposalError("a commit may contain at most one GroupContextExtensions proposal");
  const touched = new Set<number>();
  for (const u of byType.updates) {
    const idx = u.senderLeafIndex ?? -1;
    if (touched.has(idx)) throw new InvalidProposalError(`several Update/Remove proposals for leaf ${idx}`);
    touched.add(idx);
  }
  for (const r of byType.removes) {
    if (r.proposal.proposalType !== "remove") continue;
    const idx = r.proposal.remove.removed;
    if (idx === committerIndex) throw new InvalidProposalError("a commit cannot remove the committer");
    if (touched.has(idx)) throw new InvalidProposalError(`several Update/Remove proposals for leaf ${idx}`);
    touched.add(idx);
  }
}

/** Add each KeyPackage's leaf after validating it against the members left after Update/Remove. */
async function addMembers(
  env: LeafCheckEnv,
  tree: RatchetTree,
  adds: readonly AppliedProposal[],
  extensionsAfter: Extension[],
): Promise<{ tree: RatchetTree; added: AddedMember[] }> {
  const added: AddedMember[] = [];
  if (adds.length === 0) return { tree, added };
  const creds = summariseCredentials(tree);
  let next = tree;
  for (const a of adds) {
    if (a.proposal.proposalType !== "add") continue;
    const kp = a.proposal.add.keyPackage;
    await validateKeyPackage(env, kp, creds, extensionsAfter);
    const [withLeaf, nodeIndex] = addLeafNode(next, kp.leafNode);
    next = withLeaf;
    added.push({ leafIndex: nodeToLeafIndex(nodeIndex), keyPackage: kp, credential: kp.leafNode.credential });
  }
  return { tree: next, added };
}

/**
 * The Delivery Service's view of an MLS group (RFC 9420 without secrets): GroupContext, public
 * ratchet tree and pending proposals. It validates every handshake message the way a member
 * would, as far as that is possible without epoch secrets: membership tags, confirmation tags and
 * ExternalInit KEM outputs cannot be checked, which is why the committer's GroupInfo is compared
 * with the state computed here.
 */
export class PublicGroup {
  private constructor(
    private state: PublicGroupState,
    private readonly options: PublicGroupOptions,
  ) {}

  /**
   * Create the validator from a group's GroupInfo and its ratchet tree (from the ratchet_tree
   * extension or given out of band). Verifies the tree (structure, leaves, key uniqueness, parent
   * hashes, tree hash) and the GroupInfo signature.
   */
  static async fromGroupInfo(
    groupInfo: GroupInfo,
    options: PublicGroupOptions,
    ratchetTree?: RatchetTree,
  ): Promise<PublicGroup> {
    const cs = options.cipherSuite;
    if (groupInfo.groupContext.cipherSuite !== cs.name)
      throw new InvalidTreeError(
        `group uses ${groupInfo.groupContext.cipherSuite}, validator runs ${cs.name}`,
      );
    const tree = await rethrowAs(
      (m) => new InvalidTreeError(m),
      () => ratchetTreeFromExtension(groupInfo) ?? ratchetTree,
    );
    if (tree === undefined)
      throw new InvalidTreeError("no ratchet tree: neither a ratchet_tree extension nor one given");
    const group = new PublicGroup(
      {
        groupContext: groupInfo.groupContext,
        tree,
        confirmationTag: groupInfo.confirmationTag,
        pending: [],
        retainedTrees: [],
      },
      options,
    );
    await group.validateWholeTree();
    const signer = leafAt(tree, groupInfo.signer);
    if (signer === undefined)
      throw new UnknownSenderError(`GroupInfo signer ${groupInfo.signer} is not a member`);
    if (!(await verifyGroupInfoSignature(groupInfo, signer.signaturePublicKey, cs.signature)))
      throw new BadGroupInfoSignatureError("GroupInfo signature does not verify");
    return group;
  }

  /** Restore a validator from {@link PublicGroup.encode} output (trusted storage: no re-validation). */
  static decode(bytes: Uint8Array, options: PublicGroupOptions): PublicGroup {
    return new PublicGroup(decodePublicGroupState(bytes), options);
  }

  /**
   * An independent copy in O(1): the state is never changed in place (every step replaces it),
   * so the copy and this validator share it until either moves on.
   */
  fork(): PublicGroup {
    return new PublicGroup(this.state, this.options);
  }

  /** Compact serialisation: RFC 9420 encodings of context, tree and pending proposals. */
  encode(): Uint8Array {
    return encodePublicGroupState(this.state);
  }

  get groupContext(): GroupContext {
    return this.state.groupContext;
  }
  get groupId(): Uint8Array {
    return this.state.groupContext.groupId;
  }
  get epoch(): bigint {
    return this.state.groupContext.epoch;
  }
  get tree(): RatchetTree {
    return this.state.tree;
  }
  /** The ratchet tree in its RFC 9420 encoding (what a joiner needs). */
  encodedTree(): Uint8Array {
    return encodedTree(this.state.tree).slice();
  }
  /** Proposals accepted in the current epoch, in arrival order. */
  get pendingProposals(): readonly PendingProposal[] {
    return this.state.pending;
  }
  /** The leaf at a leaf index, or undefined when blank or out of range. */
  leaf(leafIndex: number): LeafNode | undefined {
    return leafAt(this.state.tree, leafIndex);
  }
  /** All non-blank leaves with their indices. */
  members(): { leafIndex: number; leaf: LeafNode }[] {
    const out: { leafIndex: number; leaf: LeafNode }[] = [];
    for (let i = 0; i < this.state.tree.length; i += 2) {
      const node = this.state.tree[i];
      if (node?.nodeType === "leaf") out.push({ leafIndex: i / 2, leaf: node.leaf });
    }
    return out;
  }

  /**
   * The ratchet tree of an epoch, for members who joined by Welcome in that epoch: the current
   * tree, or a retained one of a recent epoch in which members were added.
   */
  treeAt(epoch: bigint): RatchetTree | undefined {
    if (epoch === this.epoch) return this.state.tree;
    const kept = this.state.retainedTrees.find((t) => t.epoch === epoch);
    if (kept === undefined) return undefined;
    const decoded = decodeRatchetTree(kept.tree, 0);
    return decoded?.[0];
  }

  /** {@link treeAt} encoded: a retained tree's stored bytes as they are (no decode and re-encode). */
  encodedTreeAt(epoch: bigint): Uint8Array | undefined {
    if (epoch === this.epoch) return encodedTree(this.state.tree).slice();
    return this.state.retainedTrees.find((t) => t.epoch === epoch)?.tree;
  }

  /** Whether the tree of `epoch` is kept ({@link treeAt} would return it), without decoding it. */
  hasTreeAt(epoch: bigint): boolean {
    return epoch === this.epoch || this.state.retainedTrees.some((t) => t.epoch === epoch);
  }

  /** Epochs whose trees are retained (besides the current one). */
  retainedEpochs(): bigint[] {
    return this.state.retainedTrees.map((t) => t.epoch);
  }

  /**
   * Validate a proposal sent as PublicMessage and store it for this epoch, so a later commit may
   * include it by reference.
   */
  async processProposal(message: PublicMessage): Promise<AcceptedProposal> {
    const content = message.content;
    this.checkFraming(message);
    if (content.contentType !== "proposal")
      throw new UnexpectedContentError(`expected a proposal, got ${content.contentType}`);
    const proposal = content.proposal;
    const sender = content.sender;
    let senderLeafIndex: number | undefined;
    let signatureKey: Uint8Array;
    switch (sender.senderType) {
      case "member": {
        const leaf = this.leaf(sender.leafIndex);
        if (leaf === undefined)
          throw new UnknownSenderError(`sender leaf ${sender.leafIndex} is blank or out of range`);
        senderLeafIndex = sender.leafIndex;
        signatureKey = leaf.signaturePublicKey;
        break;
      }
      case "external": {
        const external = await rethrowAs(
          (m) => new UnknownSenderError(m),
          () => senderFromExtension(this.groupContext.extensions, sender.senderIndex),
        );
        if (external === undefined) throw new UnknownSenderError(`no external sender ${sender.senderIndex}`);
        if (
          proposal.proposalType !== "add" &&
          proposal.proposalType !== "remove" &&
          proposal.proposalType !== "group_context_extensions"
        )
          throw new InvalidProposalError(`external senders cannot propose ${String(proposal.proposalType)}`);
        signatureKey = external.signaturePublicKey;
        break;
      }
      case "new_member_proposal":
        if (proposal.proposalType !== "add")
          throw new InvalidProposalError("a new member may only propose its own Add");
        signatureKey = proposal.add.keyPackage.leafNode.signaturePublicKey;
        break;
      default:
        throw new UnknownSenderError(`a ${sender.senderType} sender cannot send proposals`);
    }
    await this.verifyContentSignature(message, signatureKey);

    assertSupportedProposal(proposal);
    const env = this.env();
    const creds = summariseCredentials(this.state.tree);
    switch (proposal.proposalType) {
      case "add":
        await validateKeyPackage(env, proposal.add.keyPackage, creds);
        assertLeafKeysFresh(this.state.tree, proposal.add.keyPackage.leafNode);
        break;
      case "remove":
        if (this.leaf(proposal.remove.removed) === undefined)
          throw new EmptyLeafRemovalError(`leaf ${proposal.remove.removed} is blank or out of range`);
        break;
      case "update": {
        if (senderLeafIndex === undefined)
          throw new InvalidProposalError("only members can send Update proposals");
        await validateLeafNode(
          env,
          proposal.update.leafNode,
          "update",
          senderLeafIndex,
          summariseCredentials(this.state.tree, new Set([senderLeafIndex])),
        );
        assertLeafKeysFresh(this.state.tree, proposal.update.leafNode, senderLeafIndex);
        break;
      }
      case "group_context_extensions":
        this.checkExtensionsSupported(proposal.groupContextExtensions.extensions, this.state.tree);
        break;
      case "external_init":
        throw new InvalidProposalError("ExternalInit is only valid by value in an external commit");
    }

    const ref = await makeProposalRef(
      { wireformat: WIREFORMAT, content, auth: message.auth },
      this.options.cipherSuite.hash,
    );
    if (this.state.pending.some((p) => bytesEqual(p.ref, ref)))
      throw new InvalidProposalError("proposal already received in this epoch");
    this.state = { ...this.state, pending: [...this.state.pending, { ref, proposal, sender }] };
    return { ref, proposal, sender, senderLeafIndex, aad: content.authenticatedData };
  }

  /**
   * Validate a commit sent as PublicMessage and compute the next epoch's GroupContext and tree,
   * without changing this group. Throws a PublicGroupError subclass naming the broken rule.
   */
  async stageCommit(message: PublicMessage): Promise<StagedCommit> {
    const content = message.content;
    this.checkFraming(message);
    if (content.contentType !== "commit" || message.auth.contentType !== "commit")
      throw new UnexpectedContentError(`expected a commit, got ${content.contentType}`);
    const commit = content.commit;
    const path = commit.path;
    await this.verifyCommitSignature(message, path);

    const env = this.env();
    const sender = content.sender;
    const committerIndex = sender.senderType === "member" ? sender.leafIndex : undefined;
    const applied = this.resolveCommitProposals(commit, committerIndex);
    const byType = sortProposals(applied);
    const outcome =
      committerIndex !== undefined
        ? await this.applyMemberProposals(env, applied, byType, committerIndex, path)
        : this.applyExternalProposals(byType, path);

    const tree =
      path === undefined ? outcome.tree : await this.applyCommitPath(env, outcome, path, committerIndex);
    // Catches every duplicate encryption/signature key, including what ts-mls 1.6.4 lets through.
    assertUniqueKeys(tree);

    const committerLeaf = leafAt(tree, outcome.committerLeafIndex);
    if (committerLeaf === undefined) throw new UnknownSenderError("committer has no leaf after the commit");
    const groupContext = await this.nextGroupContext(message, content, tree, outcome.newExtensions);
    return {
      epoch: this.state.groupContext.epoch,
      newEpoch: groupContext.epoch,
      sender: {
        kind: committerIndex === undefined ? "new_member_commit" : "member",
        leafIndex: outcome.committerLeafIndex,
        credential: committerLeaf.credential,
        signaturePublicKey: committerLeaf.signaturePublicKey,
      },
      external: committerIndex === undefined,
      resync: outcome.resync,
      added: outcome.added,
      removed: outcome.removed,
      updated: outcome.updated,
      proposals: applied,
      newExtensions: outcome.newExtensions,
      hasPath: path !== undefined,
      aad: content.authenticatedData,
      groupContext,
      tree,
      confirmationTag: message.auth.confirmationTag,
    };
  }

  /**
   * Check the GroupInfo the committer uploaded for the new epoch: signed by the committer, same
   * GroupContext and confirmation tag as computed, and (if it carries one) the same tree.
   */
  async verifyGroupInfo(staged: StagedCommit, groupInfo: GroupInfo): Promise<void> {
    if (!groupContextBytesEqual(groupInfo.groupContext, staged.groupContext))
      throw new GroupInfoMismatchError("GroupInfo's GroupContext differs from the one the commit produces");
    if (!bytesEqual(groupInfo.confirmationTag, staged.confirmationTag))
      throw new GroupInfoMismatchError("GroupInfo's confirmation tag differs from the commit's");
    if (groupInfo.signer !== staged.sender.leafIndex)
      throw new GroupInfoMismatchError(`GroupInfo signed by leaf ${groupInfo.signer}, not the committer`);
    const treeExt = groupInfo.extensions.find((e) => e.extensionType === "ratchet_tree");
    if (treeExt !== undefined && !bytesEqual(treeExt.extensionData, encodedTree(staged.tree)))
      throw new GroupInfoMismatchError("GroupInfo's ratchet_tree differs from the computed tree");
    if (
      !(await verifyGroupInfoSignature(
        groupInfo,
        staged.sender.signaturePublicKey,
        this.options.cipherSuite.signature,
      ))
    )
      throw new BadGroupInfoSignatureError("GroupInfo signature does not verify");
  }

  /**
   * Advance to the staged commit's epoch. The commit must have been staged on the current epoch.
   * `options.keep` selects which earlier retained trees are still needed (see {@link MergeOptions}).
   */
  merge(staged: StagedCommit, options: MergeOptions = {}): void {
    if (staged.epoch !== this.epoch) throw new WrongEpochError(this.epoch, staged.epoch);
    const keep = options.keep;
    const max =
      keep === undefined ? (this.options.retainedTrees ?? 4) : (this.options.maxRetainedTrees ?? 32);
    let retained = this.state.retainedTrees;
    if (keep !== undefined) retained = retained.filter((t) => keep(t.epoch));
    // A member added by Welcome fetches the tree of the epoch it joins.
    if (staged.added.length > 0 && max > 0)
      retained = [...retained, { epoch: staged.newEpoch, tree: encodedTree(staged.tree) }];
    // Bounded: the oldest trees go first.
    if (retained.length > max) retained = max > 0 ? retained.slice(-max) : [];
    this.state = {
      groupContext: staged.groupContext,
      tree: staged.tree,
      confirmationTag: staged.confirmationTag,
      pending: [],
      retainedTrees: retained,
    };
  }

  /** Stage, check the GroupInfo (when given) and merge a commit in one step. */
  async processCommit(message: PublicMessage, groupInfo?: GroupInfo): Promise<StagedCommit> {
    const staged = await this.stageCommit(message);
    if (groupInfo !== undefined) await this.verifyGroupInfo(staged, groupInfo);
    this.merge(staged);
    return staged;
  }

  /**
   * A member's commit is signed with its leaf's key; an external commit with the key of the leaf
   * in its UpdatePath, which it therefore must carry.
   */
  private async verifyCommitSignature(message: PublicMessage, path: UpdatePath | undefined): Promise<void> {
    const sender = message.content.sender;
    if (sender.senderType === "member") {
      const leaf = this.leaf(sender.leafIndex);
      if (leaf === undefined)
        throw new UnknownSenderError(`sender leaf ${sender.leafIndex} is blank or out of range`);
      await this.verifyContentSignature(message, leaf.signaturePublicKey);
    } else if (sender.senderType === "new_member_commit") {
      if (path === undefined) throw new MissingUpdatePathError("an external commit must carry an UpdatePath");
      await this.verifyContentSignature(message, path.leafNode.signaturePublicKey);
    } else {
      throw new UnknownSenderError(`a ${sender.senderType} sender cannot commit`);
    }
  }

  /** Resolve proposals (RFC 9420 §12.4.2): by value from the committer, by reference from the store. */
  private resolveCommitProposals(commit: Commit, committerIndex: number | undefined): AppliedProposal[] {
    const applied: AppliedProposal[] = [];
    for (const p of commit.proposals) {
      if (p.proposalOrRefType === "proposal") {
        applied.push({ proposal: p.proposal, senderLeafIndex: committerIndex, byReference: false });
        continue;
      }
      if (committerIndex === undefined)
        throw new InvalidExternalCommitError("an external commit cannot include proposals by reference");
      const stored = this.state.pending.find((s) => bytesEqual(s.ref, p.reference));
      if (stored === undefined)
        throw new UnknownProposalError("commit references a proposal not received in this epoch");
      applied.push({
        proposal: stored.proposal,
        senderLeafIndex: stored.sender.senderType === "member" ? stored.sender.leafIndex : undefined,
        byReference: true,
      });
    }
    for (const a of applied) assertSupportedProposal(a.proposal);
    return applied;
  }

  /** A member commit's proposals (RFC 9420 §12.2), applied in the order members do: Update, Remove, Add. */
  private async applyMemberProposals(
    env: LeafCheckEnv,
    applied: readonly AppliedProposal[],
    byType: ProposalsByType,
    committerIndex: number,
    path: UpdatePath | undefined,
  ): Promise<ProposalOutcome> {
    checkMemberProposalList(byType, committerIndex);
    const gce = byType.gces[0]?.proposal;
    const newExtensions =
      gce?.proposalType === "group_context_extensions" ? gce.groupContextExtensions.extensions : undefined;

    const original = this.state.tree;
    let tree = original;
    const updated: number[] = [];
    for (const u of byType.updates) {
      if (u.proposal.proposalType !== "update" || u.senderLeafIndex === undefined) continue;
      const idx = u.senderLeafIndex;
      if (this.leaf(idx) === undefined) throw new UnknownSenderError(`Update from blank leaf ${idx}`);
      const others = summariseCredentials(original, new Set([idx]));
      await validateLeafNode(env, u.proposal.update.leafNode, "update", idx, others);
      tree = updateLeafNode(tree, u.proposal.update.leafNode, toLeafIndex(idx));
      updated.push(idx);
    }
    const removed: RemovedMember[] = [];
    for (const r of byType.removes) {
      if (r.proposal.proposalType !== "remove") continue;
      const idx = r.proposal.remove.removed;
      const leaf = leafAt(original, idx);
      if (leaf === undefined) throw new EmptyLeafRemovalError(`leaf ${idx} is blank or out of range`);
      tree = removeLeafNode(tree, toLeafIndex(idx));
      removed.push({
        leafIndex: idx,
        credential: leaf.credential,
        signaturePublicKey: leaf.signaturePublicKey,
      });
    }
    const extensionsAfter = newExtensions ?? this.state.groupContext.extensions;
    const adding = await addMembers(env, tree, byType.adds, extensionsAfter);
    tree = adding.tree;
    if (newExtensions !== undefined) this.checkExtensionsSupported(newExtensions, tree);

    // RFC 9420 §12.4: a path is required unless the commit only adds members (ts-mls, like
    // OpenMLS before it, also sends GroupContextExtensions without one; we accept that).
    const pathRequired = applied.length === 0 || byType.updates.length > 0 || byType.removes.length > 0;
    if (pathRequired && path === undefined)
      throw new MissingUpdatePathError("this commit must carry an UpdatePath");
    const added = adding.added;
    return {
      tree,
      newExtensions,
      added,
      removed,
      updated,
      committerLeafIndex: committerIndex,
      resync: false,
    };
  }

  /** An external commit's proposals (RFC 9420 §12.4.3.2): one ExternalInit, at most one Remove (a resync). */
  private applyExternalProposals(byType: ProposalsByType, path: UpdatePath | undefined): ProposalOutcome {
    if (path === undefined) throw new MissingUpdatePathError("an external commit must carry an UpdatePath");
    if (byType.inits.length !== 1)
      throw new InvalidExternalCommitError("an external commit needs exactly one ExternalInit");
    if (byType.adds.length + byType.updates.length + byType.gces.length > 0)
      throw new InvalidExternalCommitError("an external commit may only contain ExternalInit and a Remove");
    if (byType.removes.length > 1)
      throw new InvalidExternalCommitError("an external commit may remove at most one leaf");
    let tree = this.state.tree;
    const removed: RemovedMember[] = [];
    const r = byType.removes[0]?.proposal;
    if (r?.proposalType === "remove") {
      const old = leafAt(tree, r.remove.removed);
      if (old === undefined)
        throw new EmptyLeafRemovalError(`leaf ${r.remove.removed} is blank or out of range`);
      // Resync: only the same client may replace its own leaf.
      if (!bytesEqual(encodeCredential(old.credential), encodeCredential(path.leafNode.credential)))
        throw new InvalidExternalCommitError(
          "a resync may only remove a leaf with the joiner's own credential",
        );
      tree = removeLeafNode(tree, toLeafIndex(r.remove.removed));
      removed.push({
        leafIndex: r.remove.removed,
        credential: old.credential,
        signaturePublicKey: old.signaturePublicKey,
      });
    }
    return {
      tree,
      newExtensions: undefined,
      added: [],
      removed,
      updated: [],
      committerLeafIndex: nodeToLeafIndex(findBlankLeafNodeIndexOrExtend(tree)),
      resync: r?.proposalType === "remove",
    };
  }

  /**
   * Validate the committer's new leaf and the UpdatePath's shape, then apply it. An external
   * joiner's leaf is first added at the position it computed.
   */
  private async applyCommitPath(
    env: LeafCheckEnv,
    outcome: ProposalOutcome,
    path: UpdatePath,
    committerIndex: number | undefined,
  ): Promise<RatchetTree> {
    const { tree, newExtensions, committerLeafIndex } = outcome;
    const ignore = new Set(committerIndex === undefined ? [] : [committerIndex]);
    const creds: CredentialSummary = summariseCredentials(tree, ignore);
    const gc = this.state.groupContext;
    const pathEnv: LeafCheckEnv =
      newExtensions === undefined ? env : { ...env, groupContext: { ...gc, extensions: newExtensions } };
    await validateLeafNode(pathEnv, path.leafNode, "commit", committerLeafIndex, creds);
    let base = tree;
    if (committerIndex === undefined) {
      const [withLeaf, nodeIndex] = addLeafNode(tree, path.leafNode);
      if (nodeToLeafIndex(nodeIndex) !== committerLeafIndex)
        throw new BadUpdatePathError("joiner leaf position mismatch");
      base = withLeaf;
    }
    const addedLeaves = new Set(outcome.added.map((a) => a.leafIndex));
    this.checkPathCiphertexts(base, committerLeafIndex, path.nodes, addedLeaves);
    return await rethrowAs(
      (m) => new BadUpdatePathError(m),
      () =>
        applyUpdatePath(
          base,
          toLeafIndex(committerLeafIndex),
          path,
          this.options.cipherSuite.hash,
          committerIndex === undefined,
        ),
    );
  }

  /** The next epoch's GroupContext: new extensions, the tree's hash and the commit's transcript. */
  private async nextGroupContext(
    message: PublicMessage,
    content: CommitContent,
    tree: RatchetTree,
    newExtensions: Extension[] | undefined,
  ): Promise<GroupContext> {
    const gc = this.state.groupContext;
    const contextWithExtensions = newExtensions === undefined ? gc : { ...gc, extensions: newExtensions };
    const treeHash = await treeHashRoot(tree, this.options.cipherSuite.hash);
    return await nextEpochContext(
      contextWithExtensions,
      WIREFORMAT,
      { ...content, contentType: "commit", commit: content.commit },
      message.auth.signature,
      treeHash,
      this.state.confirmationTag,
      this.options.cipherSuite.hash,
    );
  }

  private env(): LeafCheckEnv {
    const now = this.options.now?.() ?? Date.now();
    return {
      groupContext: this.state.groupContext,
      cs: this.options.cipherSuite,
      validateCredential: this.options.validateCredential,
      nowSeconds: BigInt(Math.floor(now / 1000)),
    };
  }

  private checkFraming(message: PublicMessage): void {
    if (!bytesEqual(message.content.groupId, this.groupId))
      throw new WrongGroupError("message is for another group");
    if (message.content.epoch !== this.epoch) throw new WrongEpochError(this.epoch, message.content.epoch);
    if (message.senderType !== message.content.sender.senderType)
      throw new UnexpectedContentError("PublicMessage sender type disagrees with its content");
  }

  private async verifyContentSignature(message: PublicMessage, signatureKey: Uint8Array): Promise<void> {
    const ok = await verifyFramedContentSignature(
      signatureKey,
      WIREFORMAT,
      message.content,
      message.auth,
      this.state.groupContext,
      this.options.cipherSuite.signature,
    );
    if (ok) return;
    if (message.content.authenticatedData.byteLength > 0)
      throw new TamperedAadError("signature over the content and its authenticated data does not verify");
    throw new BadSignatureError("framed content signature does not verify");
  }

  /** Every member must support non-default GroupContext extensions (RFC 9420 §12.1.7). */
  private checkExtensionsSupported(extensions: Extension[], tree: RatchetTree): void {
    for (let i = 0; i < tree.length; i += 2) {
      const node = tree[i];
      if (node?.nodeType === "leaf" && !extensionsSupportedByCapabilities(extensions, node.leaf.capabilities))
        throw new InvalidProposalError(`leaf ${i / 2} does not support the proposed GroupContext extensions`);
    }
  }

  /**
   * Each UpdatePath node must carry one ciphertext per node in the copath child's resolution,
   * minus members added by this commit (they get the path secret in the Welcome). A wrong count
   * would leave some member unable to follow the group.
   */
  private checkPathCiphertexts(
    tree: RatchetTree,
    committer: number,
    nodes: { encryptedPathSecret: unknown[] }[],
    addedLeaves: ReadonlySet<number>,
  ): void {
    const fdp = filteredDirectPathAndCopathResolution(toLeafIndex(committer), tree);
    if (fdp.length !== nodes.length)
      throw new BadUpdatePathError(
        `UpdatePath has ${nodes.length} nodes, the filtered direct path has ${fdp.length}`,
      );
    const excluded = new Set([...addedLeaves].map((l) => leafToNodeIndex(toLeafIndex(l))));
    for (const [i, step] of fdp.entries()) {
      const expected = step.resolution.filter((n) => !excluded.has(n)).length;
      const got = nodes[i]?.encryptedPathSecret.length ?? 0;
      if (got !== expected)
        throw new BadUpdatePathError(`UpdatePath node ${i} has ${got} ciphertexts, expected ${expected}`);
    }
  }

  private async validateWholeTree(): Promise<void> {
    const tree = this.state.tree;
    // A tree given to the DS is in its trimmed wire form (RFC 9420 §12.4.3.3).
    if (tree.length === 0 || tree[tree.length - 1] === undefined)
      throw new InvalidTreeError("tree is empty or ends blank");
    await validateRatchetTree(tree, this.env());
  }
}
