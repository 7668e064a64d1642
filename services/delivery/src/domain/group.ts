import { AeadLabel, bytesEqual, encryptAtRest, HpkeKeyPair } from "@phoenix/crypto";
import {
  PHOENIX_EXTENSION_TYPES,
  PublicGroup,
  type PublicGroupOptions,
  parseGroupInfo,
  parseMlsMessage,
  parsePublicMessage,
  queueConfigOf,
  roleOf,
  rolesOf,
  type StagedCommit,
} from "@phoenix/mls";
import { common, delivery } from "@phoenix/proto";
import { FailedPreconditionError, InvalidArgumentError } from "@phoenix/runtime/errors";
import type { Extension, RatchetTree } from "ts-mls";
import { makeKeyPackageRef } from "ts-mls/keyPackage.js";
import { decodeRatchetTree } from "ts-mls/ratchetTree.js";
import { phoenixCredentialValidator, userPseudonymOf } from "./credentials.js";
import type { DsContext } from "./ds-context.js";
import { invalidMls, malformed, notAdmin, pendingProposals, sizeLimit } from "./errors.js";
import type { FanOutPlan } from "./fan-out.js";
import type {
  DsGroupState,
  MemberRecord,
  QueueRef,
  RequiredRemovalRecord,
  WelcomeEpochRecord,
} from "./group-state.js";
import { LIMITS } from "./limits.js";

/** The kinds of commit the DS accepts, one per RPC. */
export type CommitKind = "operation" | "join_connection" | "resync" | "delete";

export interface CommitInput {
  kind: CommitKind;
  /** The signer of the request (header `leaf_index`). */
  senderLeaf: number;
  commit: Uint8Array;
  /** Absent only for DeleteGroup. */
  groupInfo: Uint8Array | undefined;
  addedClients: delivery.AddedClientsInfo | undefined;
  /** JoinConnectionGroup: the joiner's queue and profile key. */
  joinerQueue?: QueueRef;
  joinerProfileKey?: Uint8Array;
  /** The EAR key the request opened the state with. */
  earKey: Uint8Array;
  /** GroupOperation: the next EAR key the committer sent (required iff the commit removes someone). */
  newEarKey?: Uint8Array;
}

export interface CommitResult {
  newEpoch: bigint;
  fanOuts: FanOutPlan[];
  /** The key to store the state under from now on (rotated by a commit that removes someone). */
  earKeyAfter: Uint8Array;
}

/** Input of {@link DsGroup.create}. */
export interface CreateInput {
  mlsGroupId: Uint8Array;
  ratchetTree: Uint8Array;
  groupInfo: Uint8Array;
  creatorClientInfo: Uint8Array;
  creatorQueue: QueueRef;
  encryptedUserProfileKey: Uint8Array;
}

/** The MLS group id of a qualified group id; members compute the same (one encoding). */
export { mlsGroupId } from "@phoenix/wire";

/** A queue reference as carried in a KeyPackage's queue-config extension: an encoded QsReference. */
export function queueRefFromExtension(data: Uint8Array | undefined, field: string): QueueRef {
  if (data === undefined) throw invalidMls(`${field}: KeyPackage has no queue-config extension`);
  let ref: common.QsReference;
  try {
    ref = common.QsReference.decode(data);
  } catch {
    throw invalidMls(`${field}: queue-config extension is not a QsReference`);
  }
  return checkQueueRef(ref, field);
}

/** Validates a QsReference from a request. */
export function checkQueueRef(ref: common.QsReference | undefined, field: string): QueueRef {
  if (ref === undefined) throw malformed(field, "missing");
  if (ref.domain.length === 0 || ref.domain.length > 253) throw malformed(`${field}.domain`, "not a domain");
  if (ref.sealedQueueConfig.length === 0) throw malformed(`${field}.sealed_queue_config`, "empty");
  if (ref.sealedQueueConfig.length > LIMITS.sealedQueueConfig)
    throw sizeLimit(`${field}.sealed_queue_config`, LIMITS.sealedQueueConfig, ref.sealedQueueConfig.length);
  return { domain: ref.domain, sealedQueueConfig: ref.sealedQueueConfig };
}

function sameQueue(a: QueueRef, b: QueueRef): boolean {
  return a.domain === b.domain && bytesEqual(a.sealedQueueConfig, b.sealedQueueConfig);
}

function rolesBytes(extensions: readonly Extension[]): Uint8Array | undefined {
  return extensions.find((e) => e.extensionType === PHOENIX_EXTENSION_TYPES.roles)?.extensionData;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

/**
 * One group as the DS works on it while a request holds its EAR key: the validator
 * (PublicGroup) plus the Phoenix bookkeeping (queues, encrypted client infos, roles, proposal
 * store, DS-induced removals, trees for Welcome joiners). Pure: no I/O; the caller loads and
 * stores the encrypted state.
 */
export class DsGroup {
  private constructor(
    private readonly state: DsGroupState,
    private readonly publicGroup: PublicGroup,
    private readonly ctx: DsContext,
  ) {}

  private static options(ctx: DsContext): PublicGroupOptions {
    return {
      cipherSuite: ctx.cipherSuite,
      validateCredential: phoenixCredentialValidator(ctx.now),
      now: ctx.now,
    };
  }

  /** Restores a group from its decrypted state. */
  static open(state: DsGroupState, ctx: DsContext): DsGroup {
    return new DsGroup(state, PublicGroup.decode(state.publicGroup, DsGroup.options(ctx)), ctx);
  }

  /**
   * CreateGroup: validates the creator's one-leaf tree and epoch-0 GroupInfo (signature, group id,
   * roles extension naming the creator as admin) and builds the initial state.
   */
  static async create(
    input: CreateInput,
    ctx: DsContext,
  ): Promise<{ group: DsGroup; queueReportKey: Uint8Array }> {
    const groupInfo = parseGroupInfo(input.groupInfo);
    const tree = decodeTree(input.ratchetTree, "tbs.ratchet_tree");
    const publicGroup = await PublicGroup.fromGroupInfo(groupInfo, DsGroup.options(ctx), tree);
    if (!bytesEqual(publicGroup.groupId, input.mlsGroupId))
      throw invalidMls("the GroupInfo's group id is not the requested group id");
    if (publicGroup.epoch !== 0n) throw invalidMls(`a new group starts at epoch 0, not ${publicGroup.epoch}`);
    const members = publicGroup.members();
    if (members.length !== 1 || members[0]?.leafIndex !== 0)
      throw invalidMls("a new group's tree holds exactly the creator at leaf 0");
    const creator = members[0].leaf;
    const credentialOk = await phoenixCredentialValidator(ctx.now)(
      creator.credential,
      creator.signaturePublicKey,
      {
        source: "commit",
        leafIndex: 0,
      },
    );
    if (!credentialOk)
      throw invalidMls("the creator's leaf credential is not a valid Phoenix leaf credential");
    const roles = rolesOf(publicGroup.groupContext);
    if (roles === undefined) throw invalidMls("the group context has no roles extension");
    const pseudonym = userPseudonymOf(creator.credential);
    if (
      roleOf(roles, { kind: "leaf", leafIndex: 0 }) !== "admin" &&
      roleOf(roles, { kind: "pseudonym", pseudonym }) !== "admin"
    )
      throw invalidMls("the roles extension must make the creator an admin");
    const reportKey = HpkeKeyPair.generate();
    const now = ctx.now();
    const state: DsGroupState = {
      publicGroup: publicGroup.encode(),
      groupInfo: input.groupInfo,
      members: [
        {
          leafIndex: 0,
          encryptedClientInfo: input.creatorClientInfo,
          queue: input.creatorQueue,
          activityTime: now,
          activityEpoch: 0n,
        },
      ],
      profileKeys:
        input.encryptedUserProfileKey.length > 0
          ? [{ pseudonym, encryptedProfileKey: input.encryptedUserProfileKey }]
          : [],
      proposalMessages: [],
      requiredRemovals: [],
      welcomeEpochs: [],
      queueReportPrivateKey: reportKey.privateBytes,
    };
    return { group: new DsGroup(state, publicGroup, ctx), queueReportKey: reportKey.publicKey.bytes };
  }

  /**
   * A copy that shares nothing this class changes in place (member records, lists, the
   * validator's state), so a cached group can serve many requests: each works on its own fork.
   */
  fork(): DsGroup {
    const s = this.state;
    return new DsGroup(
      {
        ...s,
        members: s.members.map((m) => ({ ...m })),
        profileKeys: [...s.profileKeys],
        proposalMessages: [...s.proposalMessages],
        requiredRemovals: [...s.requiredRemovals],
        welcomeEpochs: [...s.welcomeEpochs],
      },
      this.publicGroup.fork(),
      this.ctx,
    );
  }

  /** The state to encrypt and store. */
  toState(): DsGroupState {
    return { ...this.state, publicGroup: this.publicGroup.encode() };
  }

  get epoch(): bigint {
    return this.publicGroup.epoch;
  }

  get mlsGroupId(): Uint8Array {
    return this.publicGroup.groupId;
  }

  get groupInfo(): Uint8Array {
    return this.state.groupInfo;
  }

  get queueReportPrivateKey(): Uint8Array {
    return this.state.queueReportPrivateKey;
  }

  /** The signature key of an occupied leaf, or undefined. */
  signatureKeyOf(leafIndex: number): Uint8Array | undefined {
    return this.publicGroup.leaf(leafIndex)?.signaturePublicKey;
  }

  private member(leafIndex: number): MemberRecord | undefined {
    return this.state.members.find((m) => m.leafIndex === leafIndex);
  }

  private pseudonymOf(leafIndex: number): Uint8Array | undefined {
    const leaf = this.publicGroup.leaf(leafIndex);
    return leaf === undefined ? undefined : userPseudonymOf(leaf.credential);
  }

  /** Leaves of the user with this pseudonym. */
  private leavesOfUser(pseudonym: Uint8Array): number[] {
    return this.publicGroup
      .members()
      .filter((m) => bytesEqual(userPseudonymOf(m.leaf.credential), pseudonym))
      .map((m) => m.leafIndex);
  }

  /** Number of distinct users (pseudonyms) in the group. */
  userCount(): number {
    return new Set(this.publicGroup.members().map((m) => hex(userPseudonymOf(m.leaf.credential)))).size;
  }

  private isAdmin(leafIndex: number): boolean {
    const roles = rolesOf(this.publicGroup.groupContext) ?? [];
    const pseudonym = this.pseudonymOf(leafIndex);
    return (
      roleOf(roles, { kind: "leaf", leafIndex }) === "admin" ||
      (pseudonym !== undefined && roleOf(roles, { kind: "pseudonym", pseudonym }) === "admin")
    );
  }

  /** Queue references of every member except `exclude`. */
  recipients(exclude: ReadonlySet<number> = new Set()): QueueRef[] {
    return this.state.members.filter((m) => !exclude.has(m.leafIndex)).map((m) => m.queue);
  }

  private profileKeyOf(leafIndex: number): Uint8Array {
    const p = this.pseudonymOf(leafIndex);
    if (p === undefined) return new Uint8Array(0);
    return (
      this.state.profileKeys.find((k) => bytesEqual(k.pseudonym, p))?.encryptedProfileKey ?? new Uint8Array(0)
    );
  }

  /** MemberInfo of every occupied leaf (for ExternalCommitInfo / ConnectionGroupInfo). */
  memberInfos(): delivery.MemberInfo[] {
    return this.state.members.map((m) => ({
      leafIndex: m.leafIndex,
      encryptedClientInfo: m.encryptedClientInfo,
      encryptedUserProfileKey: this.profileKeyOf(m.leafIndex),
    }));
  }

  /** The current tree, RFC 9420 encoded. */
  encodedTree(): Uint8Array {
    return this.publicGroup.encodedTree();
  }

  /** The stored proposals as MLSMessages. */
  get proposalMessages(): readonly Uint8Array[] {
    return this.state.proposalMessages;
  }

  // ---------------------------------------------------------------------------------------------
  // DS-induced removals
  // ---------------------------------------------------------------------------------------------

  /**
   * Flags clients for removal: those inactive beyond the limit and those whose queue the QS
   * reported deleted. Returns the RequiredRemovals notice to fan out when something new was
   * flagged. `activeLeaf` (the request's sender) is active by definition.
   */
  collectRequiredRemovals(deletedQueues: readonly QueueRef[], activeLeaf: number | undefined): FanOutPlan[] {
    const cutoff = this.ctx.now() - this.ctx.clientInactivityMs;
    const fresh: RequiredRemovalRecord[] = [];
    const flagged = new Set(this.state.requiredRemovals.map((r) => r.leafIndex));
    for (const m of this.state.members) {
      if (flagged.has(m.leafIndex)) continue;
      if (deletedQueues.some((q) => sameQueue(q, m.queue))) {
        fresh.push({ leafIndex: m.leafIndex, reason: "queue_deleted" });
      } else if (m.leafIndex !== activeLeaf && m.activityTime < cutoff) {
        fresh.push({ leafIndex: m.leafIndex, reason: "inactive" });
      }
    }
    if (fresh.length === 0) return [];
    this.state.requiredRemovals.push(...fresh);
    return [
      {
        recipients: this.recipients(),
        content: {
          $case: "requiredRemovals",
          value: {
            groupId: undefined,
            epoch: this.epoch,
            removals: this.state.requiredRemovals.map(toRequiredRemoval),
          },
        },
        suppressNotifications: true,
      },
    ];
  }

  /** Leaves the DS currently requires to be removed. */
  get requiredRemovals(): readonly RequiredRemovalRecord[] {
    return this.state.requiredRemovals;
  }

  // ---------------------------------------------------------------------------------------------
  // Commits
  // ---------------------------------------------------------------------------------------------

  /** Validates and applies a commit under the rules of its RPC; returns what to fan out. */
  async applyCommit(input: CommitInput): Promise<CommitResult> {
    if (input.kind === "join_connection" && this.userCount() !== 1)
      throw new FailedPreconditionError(
        "a connection group can only be joined while it holds exactly one user",
      );
    const message = parsePublicMessage(input.commit);
    const staged = await this.publicGroup.stageCommit(message);
    this.checkCommitKind(input, staged);
    const aad = decodeAad(staged.aad);
    if (input.kind !== "resync" && input.kind !== "join_connection") this.checkPending(staged);
    if (input.kind === "operation") this.checkPermissions(staged);
    const earKeyAfter = checkEarKeyRotation(input, staged);
    const added = await this.checkAdds(staged, aad, input.addedClients);
    if (input.groupInfo !== undefined) {
      const groupInfo = parseGroupInfo(input.groupInfo as Uint8Array);
      await this.publicGroup.verifyGroupInfo(staged, groupInfo);
    }

    // Everyone who was a member before the commit (but not the sender's own leaf) receives it,
    // removed members included, so they learn they are out.
    const before = new Set<number>();
    if (!staged.external) before.add(staged.sender.leafIndex);
    if (staged.resync) for (const r of staged.removed) before.add(r.leafIndex);
    const commitRecipients = this.recipients(before);
    const oldSenderRecord = staged.resync ? this.member(input.senderLeaf) : undefined;

    // The trees of earlier Welcome epochs are kept exactly while some joiner still needs them
    // (computed before the merge, which drops the others; bounded by the PublicGroup's cap).
    const waiting = this.waitingWelcomeEpochs(staged);
    const needed = new Set(waiting.map((e) => e.epoch));
    this.publicGroup.merge(staged, { keep: (epoch) => needed.has(epoch) });
    if (input.groupInfo !== undefined) this.state.groupInfo = input.groupInfo;
    this.applyMembership(input, staged, aad, added, oldSenderRecord, waiting);

    const fanOuts: FanOutPlan[] = [];
    if (commitRecipients.length > 0)
      fanOuts.push({
        recipients: commitRecipients,
        content: { $case: "mlsMessage", value: input.commit },
        suppressNotifications: false,
      });
    const welcome = input.addedClients?.welcome;
    const welcomeInfo =
      welcome === undefined
        ? new Uint8Array(0)
        : this.sealWelcomeInfo(
            staged.newEpoch,
            earKeyAfter,
            welcome,
            added.map((a) => a.leafIndex),
          );
    if (welcome !== undefined)
      added.forEach((a, i) => {
        fanOuts.push({
          recipients: [a.queue],
          content: {
            $case: "welcomeBundle",
            value: {
              groupId: undefined,
              welcome,
              encryptedWelcomeAttributionInfo:
                input.addedClients?.encryptedWelcomeAttributionInfos[i] ?? new Uint8Array(),
              encryptedWelcomeInfo: welcomeInfo,
            },
          },
          suppressNotifications: false,
        });
      });
    return { newEpoch: staged.newEpoch, fanOuts, earKeyAfter };
  }

  /**
   * The WelcomeInfo of `epoch` sealed under the EAR key the joiners got in their attribution info
   * (the key after this commit). It travels in the WelcomeBundle, so a joiner that comes online
   * after a later removal rotated the key can still build its state: the tree and members of the
   * epoch it was added in, which it is entitled to, and who the commit added with it. Empty
   * when the bundle would grow too large.
   */
  private sealWelcomeInfo(
    epoch: bigint,
    earKeyAfter: Uint8Array,
    welcome: Uint8Array,
    addedLeaves: number[],
  ): Uint8Array {
    const found = this.welcomeInfo(epoch);
    if (found === undefined) return new Uint8Array(0);
    const info = { ...found, addedLeafIndices: addedLeaves };
    const sealed = encryptAtRest(
      earKeyAfter,
      AeadLabel.WelcomeInfo,
      delivery.WelcomeInfoResponse.encode(info).finish(),
      { aad: welcomeInfoAad(this.mlsGroupId, epoch) },
    );
    return welcome.length + sealed.length > LIMITS.welcomeBundle ? new Uint8Array(0) : sealed;
  }

  private checkCommitKind(input: CommitInput, staged: StagedCommit): void {
    switch (input.kind) {
      case "operation":
        if (staged.external) throw invalidMls("external commits go through JoinConnectionGroup or Resync");
        break;
      case "delete": {
        if (staged.external) throw invalidMls("DeleteGroup needs a commit by a member");
        if (!this.isAdmin(staged.sender.leafIndex)) throw notAdmin("only an admin can delete the group");
        const removed = new Set(staged.removed.map((r) => r.leafIndex));
        const others = this.publicGroup.members().filter((m) => m.leafIndex !== staged.sender.leafIndex);
        if (staged.added.length > 0 || others.some((m) => !removed.has(m.leafIndex)))
          throw invalidMls("DeleteGroup's commit must remove every other member and add nobody");
        break;
      }
      case "join_connection":
        if (!staged.external || staged.resync)
          throw invalidMls("JoinConnectionGroup needs an external commit");
        break;
      case "resync":
        if (!staged.resync)
          throw invalidMls("Resync needs an external commit that replaces the sender's leaf");
        if (staged.removed.length !== 1 || staged.removed[0]?.leafIndex !== input.senderLeaf)
          throw invalidMls("the resync commit must remove exactly the sender's old leaf");
        return;
    }
    if (staged.sender.leafIndex !== input.senderLeaf)
      throw invalidMls(
        `the commit's sender is leaf ${staged.sender.leafIndex}, the request is signed by leaf ${input.senderLeaf}`,
      );
  }

  /** A non-empty proposal store or DS-required removals must be committed in full. */
  private checkPending(staged: StagedCommit): void {
    const removed = new Set(staged.removed.map((r) => r.leafIndex));
    const missingProposals = this.publicGroup.pendingProposals.filter(
      (p) => p.proposal.proposalType !== "remove" || !removed.has(p.proposal.remove.removed),
    );
    const missingRemovals = this.state.requiredRemovals.filter((r) => !removed.has(r.leafIndex));
    if (missingProposals.length === 0 && missingRemovals.length === 0) return;
    const parts: string[] = [];
    if (missingProposals.length > 0) parts.push(`${missingProposals.length} stored proposal(s)`);
    if (missingRemovals.length > 0)
      parts.push(`required removal of leaf ${missingRemovals.map((r) => r.leafIndex).join(", ")}`);
    throw pendingProposals(`the commit must include ${parts.join(" and ")}`, {
      refs: this.publicGroup.pendingProposals.map((p) => p.ref),
      proposals: [...this.state.proposalMessages],
      required: this.state.requiredRemovals.map(toRequiredRemoval),
    });
  }

  /** Roles: only admins add or remove other users or change roles; users leave with all clients. */
  private checkPermissions(staged: StagedCommit): void {
    const sender = staged.sender.leafIndex;
    const senderPseudonym = userPseudonymOf(staged.sender.credential);
    const admin = this.isAdmin(sender);
    for (const a of staged.added) {
      if (!bytesEqual(userPseudonymOf(a.credential), senderPseudonym) && !admin)
        throw notAdmin("only admins can add other users");
    }
    const sanctioned = new Set<number>(this.state.requiredRemovals.map((r) => r.leafIndex));
    for (const p of this.publicGroup.pendingProposals)
      if (p.proposal.proposalType === "remove") sanctioned.add(p.proposal.remove.removed);
    const removed = new Set(staged.removed.map((r) => r.leafIndex));
    const removedUsers = new Map<string, Uint8Array>();
    for (const r of staged.removed) {
      if (sanctioned.has(r.leafIndex)) continue;
      const p = userPseudonymOf(r.credential);
      if (bytesEqual(p, senderPseudonym)) continue;
      if (!admin) throw notAdmin("only admins can remove other users");
      removedUsers.set(hex(p), p);
    }
    for (const p of removedUsers.values()) {
      const kept = this.leavesOfUser(p).filter((l) => !removed.has(l));
      if (kept.length > 0)
        throw invalidMls(`removing a user removes all of its clients: leaf ${kept.join(", ")} would remain`);
    }
    if (staged.newExtensions !== undefined) {
      const before = rolesBytes(this.publicGroup.groupContext.extensions);
      const after = rolesBytes(staged.newExtensions);
      if (after === undefined) throw invalidMls("the roles extension cannot be removed");
      if (before === undefined || !bytesEqual(before, after)) {
        if (!admin) throw notAdmin("only admins can change roles");
      }
    }
  }

  private async checkAdds(
    staged: StagedCommit,
    aad: delivery.CommitAad,
    addedClients: delivery.AddedClientsInfo | undefined,
  ): Promise<
    {
      queue: QueueRef;
      clientInfo: Uint8Array;
      keyPackageRef: Uint8Array;
      signatureKey: Uint8Array;
      notAfter: number;
      leafIndex: number;
    }[]
  > {
    const n = staged.added.length;
    if (n === 0) {
      if (addedClients !== undefined)
        throw malformed("tbs.added_clients", "present although the commit adds nobody");
      if (aad.addedClientInfos.length > 0)
        throw invalidMls("the commit's AAD has client infos but no Add proposals");
      return [];
    }
    if (addedClients === undefined)
      throw malformed("tbs.added_clients", "required when the commit adds clients");
    if (addedClients.welcome.length > LIMITS.welcome)
      throw sizeLimit("tbs.added_clients.welcome", LIMITS.welcome, addedClients.welcome.length);
    const welcome = parseMlsMessage(addedClients.welcome);
    if (welcome.wireformat !== "mls_welcome") throw invalidMls("tbs.added_clients.welcome is not a Welcome");
    if (addedClients.encryptedWelcomeAttributionInfos.length !== n)
      throw invalidMls(
        `${n} client(s) added but ${addedClients.encryptedWelcomeAttributionInfos.length} attribution info(s)`,
      );
    for (const info of addedClients.encryptedWelcomeAttributionInfos)
      if (info.length > LIMITS.attributionInfo)
        throw sizeLimit("encrypted_welcome_attribution_info", LIMITS.attributionInfo, info.length);
    if (aad.addedClientInfos.length !== n)
      throw invalidMls(
        `${n} client(s) added but the commit's AAD carries ${aad.addedClientInfos.length} client info(s)`,
      );
    const out = [];
    for (const [i, a] of staged.added.entries()) {
      const queue = queueRefFromExtension(queueConfigOf(a.keyPackage), `added KeyPackage ${i}`);
      out.push({
        queue,
        clientInfo: aad.addedClientInfos[i] as Uint8Array,
        keyPackageRef: await makeKeyPackageRef(a.keyPackage, this.ctx.cipherSuite.hash),
        signatureKey: a.keyPackage.leafNode.signaturePublicKey,
        notAfter: keyPackageNotAfter(a.keyPackage.leafNode),
        leafIndex: a.leafIndex,
      });
    }
    return out;
  }

  private applyMembership(
    input: CommitInput,
    staged: StagedCommit,
    aad: delivery.CommitAad,
    added: Awaited<ReturnType<DsGroup["checkAdds"]>>,
    oldSenderRecord: MemberRecord | undefined,
    waiting: WelcomeEpochRecord[],
  ): void {
    const now = this.ctx.now();
    const removed = new Set(staged.removed.map((r) => r.leafIndex));
    let members = this.state.members.filter((m) => !removed.has(m.leafIndex));
    const sender = staged.sender.leafIndex;
    if (staged.external) {
      const queue = staged.resync ? oldSenderRecord?.queue : input.joinerQueue;
      if (queue === undefined) throw new InvalidArgumentError("the joiner's queue is missing");
      members.push({
        leafIndex: sender,
        encryptedClientInfo: aad.senderClientInfo,
        queue,
        activityTime: now,
        activityEpoch: staged.newEpoch,
      });
      if (input.joinerProfileKey !== undefined && input.joinerProfileKey.length > 0) {
        const p = userPseudonymOf(staged.sender.credential);
        this.state.profileKeys = this.state.profileKeys.filter((k) => !bytesEqual(k.pseudonym, p));
        this.state.profileKeys.push({ pseudonym: p, encryptedProfileKey: input.joinerProfileKey });
      }
    } else {
      members = members.map((m) =>
        m.leafIndex === sender
          ? {
              ...m,
              activityTime: now,
              activityEpoch: staged.newEpoch,
              encryptedClientInfo:
                aad.senderClientInfo.length > 0 ? aad.senderClientInfo : m.encryptedClientInfo,
            }
          : m,
      );
    }
    for (const a of added)
      members.push({
        leafIndex: a.leafIndex,
        encryptedClientInfo: a.clientInfo,
        queue: a.queue,
        activityTime: now,
        activityEpoch: staged.newEpoch,
      });
    members.sort((a, b) => a.leafIndex - b.leafIndex);
    this.state.members = members;
    this.state.requiredRemovals = this.state.requiredRemovals.filter(
      (r) => !removed.has(r.leafIndex) && members.some((m) => m.leafIndex === r.leafIndex),
    );
    this.state.proposalMessages = [];
    const present = new Set(this.publicGroup.members().map((m) => hex(userPseudonymOf(m.leaf.credential))));
    this.state.profileKeys = this.state.profileKeys.filter((k) => present.has(hex(k.pseudonym)));

    // Welcome joiners still waiting (see waitingWelcomeEpochs) whose tree is still kept — the
    // PublicGroup's cap on retained trees may have dropped the oldest.
    const epochs = waiting.filter((e) => this.publicGroup.hasTreeAt(e.epoch));
    if (added.length > 0)
      epochs.push({
        epoch: staged.newEpoch,
        joiners: added.map((a) => ({
          keyPackageRef: a.keyPackageRef,
          signatureKey: a.signatureKey,
          notAfter: a.notAfter,
        })),
        members: this.memberInfos().map((m) => ({
          leafIndex: m.leafIndex,
          encryptedClientInfo: m.encryptedClientInfo,
          encryptedProfileKey: m.encryptedUserProfileKey,
        })),
      });
    this.state.welcomeEpochs = epochs;
  }

  /**
   * Welcome joiners after `staged`: a joiner that committed (or whose KeyPackage expired) no
   * longer needs its epoch's tree. A joiner removed before it fetched the tree still does: it was
   * a member from that epoch until the removal, messages were fanned out to it, and it learns of
   * the removal only by joining and processing its queue. Epochs left without joiners are dropped.
   */
  private waitingWelcomeEpochs(staged: StagedCommit): WelcomeEpochRecord[] {
    const now = this.ctx.now();
    const gone = [staged.sender.signaturePublicKey];
    const epochs: WelcomeEpochRecord[] = [];
    for (const e of this.state.welcomeEpochs) {
      const joiners = e.joiners.filter(
        (j) => j.notAfter >= now && !gone.some((k) => bytesEqual(k, j.signatureKey)),
      );
      if (joiners.length > 0) epochs.push({ ...e, joiners });
    }
    return epochs;
  }

  // ---------------------------------------------------------------------------------------------
  // Proposals, queue and profile updates, Welcome info
  // ---------------------------------------------------------------------------------------------

  /**
   * SelfRemove: Remove proposals by the sender for exactly the clients of its user go into the
   * proposal store and out to every other member.
   */
  async storeSelfRemove(senderLeaf: number, proposals: readonly Uint8Array[]): Promise<FanOutPlan[]> {
    const pseudonym = this.pseudonymOf(senderLeaf);
    if (pseudonym === undefined) throw invalidMls(`leaf ${senderLeaf} is empty`);
    const ownLeaves = new Set(this.leavesOfUser(pseudonym));
    const messages = [];
    for (const [i, bytes] of proposals.entries()) {
      const message = parsePublicMessage(bytes);
      const content = message.content;
      if (content.contentType !== "proposal" || content.proposal.proposalType !== "remove")
        throw invalidMls(`remove_proposals[${i}] is not a Remove proposal`);
      if (content.sender.senderType !== "member" || content.sender.leafIndex !== senderLeaf)
        throw invalidMls(`remove_proposals[${i}] is not sent by the request's sender`);
      messages.push({ message, bytes, removed: content.proposal.remove.removed });
    }
    const targets = new Set(messages.map((m) => m.removed));
    if (
      targets.size !== messages.length ||
      targets.size !== ownLeaves.size ||
      [...ownLeaves].some((l) => !targets.has(l))
    )
      throw invalidMls("the proposals must remove exactly the clients of the sender's user");
    for (const m of messages) await this.publicGroup.processProposal(m.message);
    this.state.proposalMessages.push(...messages.map((m) => m.bytes));
    const recipients = this.recipients(new Set([senderLeaf]));
    return messages.map((m) => ({
      recipients,
      content: { $case: "mlsMessage" as const, value: m.bytes },
      suppressNotifications: false,
    }));
  }

  /** UpdateQueueInfo. */
  updateQueue(leafIndex: number, queue: QueueRef): void {
    const m = this.member(leafIndex);
    if (m === undefined) throw invalidMls(`leaf ${leafIndex} is empty`);
    m.queue = queue;
  }

  /** UpdateProfileKey: the key of the sender's user. */
  updateProfileKey(leafIndex: number, key: Uint8Array): void {
    const p = this.pseudonymOf(leafIndex);
    if (p === undefined) throw invalidMls(`leaf ${leafIndex} is empty`);
    this.state.profileKeys = this.state.profileKeys.filter((k) => !bytesEqual(k.pseudonym, p));
    this.state.profileKeys.push({ pseudonym: p, encryptedProfileKey: key });
  }

  /**
   * WelcomeInfo auth for a KeyPackage added in `epoch`: "released" once the tree of that epoch is
   * no longer kept (every joiner caught up or expired), otherwise the joiner's signature key
   * (undefined: not added in that epoch) and whether its KeyPackage expired.
   */
  welcomeJoiner(
    epoch: bigint,
    keyPackageRef: Uint8Array,
  ): "released" | { signatureKey: Uint8Array | undefined; expired: boolean } {
    const now = this.ctx.now();
    const record = this.state.welcomeEpochs.find((e) => e.epoch === epoch);
    // Records are pruned on commits only; expiry must hold between commits too.
    if (
      record === undefined ||
      !this.publicGroup.hasTreeAt(epoch) ||
      record.joiners.every((j) => j.notAfter < now)
    )
      return "released";
    const joiner = record.joiners.find((j) => bytesEqual(j.keyPackageRef, keyPackageRef));
    return { signatureKey: joiner?.signatureKey, expired: joiner !== undefined && joiner.notAfter < now };
  }

  /** WelcomeInfo: the tree of `epoch` and the members as of then. */
  welcomeInfo(epoch: bigint): delivery.WelcomeInfoResponse | undefined {
    const record = this.state.welcomeEpochs.find((e) => e.epoch === epoch);
    const ratchetTree = this.publicGroup.encodedTreeAt(epoch);
    if (record === undefined || ratchetTree === undefined) return undefined;
    return {
      ratchetTree,
      members: record.members.map((m) => ({
        leafIndex: m.leafIndex,
        encryptedClientInfo: m.encryptedClientInfo,
        encryptedUserProfileKey: m.encryptedProfileKey,
      })),
      addedLeafIndices: [],
    };
  }
}

function keyPackageNotAfter(leaf: { leafNodeSource: string; lifetime?: { notAfter: bigint } }): number {
  const notAfter = leaf.leafNodeSource === "key_package" ? leaf.lifetime?.notAfter : undefined;
  return notAfter === undefined ? Number.MAX_SAFE_INTEGER : Number(notAfter) * 1000;
}

/** AAD of a WelcomeBundle's sealed WelcomeInfo: the MLS group id, then the epoch as u64 big-endian. */
export function welcomeInfoAad(mlsGroupId: Uint8Array, epoch: bigint): Uint8Array {
  const out = new Uint8Array(mlsGroupId.length + 8);
  out.set(mlsGroupId, 0);
  new DataView(out.buffer).setBigUint64(mlsGroupId.length, epoch);
  return out;
}

/**
 * EAR-key rotation: a GroupOperation commit that removes someone must come with the group's next
 * key (members derive it from the new epoch, the removed cannot), and no other commit may change
 * the key — members would not know it. Returns the key to store the state under.
 */
function checkEarKeyRotation(input: CommitInput, staged: StagedCommit): Uint8Array {
  const rotates = input.kind === "operation" && staged.removed.length > 0;
  const next = input.newEarKey;
  if (!rotates) {
    if (next !== undefined)
      throw malformed(
        "new_group_state_ear_key",
        "must be empty: only a commit that removes a member rotates the group's EAR key",
      );
    return input.earKey;
  }
  if (next === undefined)
    throw malformed(
      "new_group_state_ear_key",
      "required: the commit removes a member, so the group's EAR key must rotate",
    );
  if (bytesEqual(next, input.earKey))
    throw malformed("new_group_state_ear_key", "must differ from the current group_state_ear_key");
  return next;
}

function toRequiredRemoval(r: RequiredRemovalRecord): common.RequiredRemoval {
  return {
    leafIndex: r.leafIndex,
    reason:
      r.reason === "inactive"
        ? common.RemovalReason.REMOVAL_REASON_INACTIVE
        : common.RemovalReason.REMOVAL_REASON_QUEUE_DELETED,
  };
}

function decodeAad(aad: Uint8Array): delivery.CommitAad {
  let decoded: delivery.CommitAad;
  try {
    decoded = delivery.CommitAad.decode(aad);
  } catch {
    throw invalidMls("the commit's authenticated data is not a CommitAad");
  }
  for (const info of decoded.addedClientInfos)
    if (info.length > LIMITS.clientInfo)
      throw sizeLimit("CommitAad.added_client_infos", LIMITS.clientInfo, info.length);
  if (decoded.senderClientInfo.length > LIMITS.clientInfo)
    throw sizeLimit("CommitAad.sender_client_info", LIMITS.clientInfo, decoded.senderClientInfo.length);
  return decoded;
}

function decodeTree(bytes: Uint8Array, field: string): RatchetTree {
  let decoded: ReturnType<typeof decodeRatchetTree>;
  try {
    decoded = decodeRatchetTree(bytes, 0);
  } catch {
    throw malformed(field, "not an RFC 9420 RatchetTree");
  }
  if (decoded === undefined || decoded[1] !== bytes.length)
    throw malformed(field, "not an RFC 9420 RatchetTree");
  return decoded[0];
}
