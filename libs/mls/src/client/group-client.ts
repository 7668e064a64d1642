import { bytesEqual } from "@phoenix/crypto";
import {
  type Capabilities,
  type CiphersuiteImpl,
  type ClientConfig,
  type ClientState,
  type Credential,
  createApplicationMessage,
  createCommit,
  createGroup,
  createGroupInfoWithExternalPub,
  createProposal,
  decodeGroupState,
  defaultCapabilities,
  type Extension,
  emptyPskIndex,
  encodeGroupState,
  encodeMlsMessage,
  type GroupInfo,
  generateKeyPackage,
  generateKeyPackageWithKey,
  type KeyPackage,
  type MLSMessage,
  type PrivateKeyPackage,
  type Proposal,
  type ProposalOrRef,
  processPrivateMessage,
  processPublicMessage,
  type RatchetTree,
  type Welcome,
} from "ts-mls";
import { defaultClientConfig } from "ts-mls/clientConfig.js";
import { encodeCredential } from "ts-mls/credential.js";
import { ratchetTreeFromExtension } from "ts-mls/groupInfo.js";
import { unprotectPrivateMessage } from "ts-mls/messageProtection.js";
import { unprotectPublicMessage } from "ts-mls/messageProtectionPublic.js";
import { parseMlsMessage } from "../public-group/messages.js";
import { PHOENIX_EXTENSION_TYPES, type RoleAssignment, rolesExtension } from "./extensions.js";
import { joinGroupByExternalCommit, joinGroupFromWelcome } from "./join.js";

/** A resync was asked for a signature key that has no leaf in the group (ts-mls 1.6.4 would loop forever). */
export class ResyncLeafNotFoundError extends Error {
  override name = "ResyncLeafNotFoundError";
}

/** An incoming message is not something a group member processes (e.g. a Welcome or KeyPackage). */
export class UnexpectedMessageError extends Error {
  override name = "UnexpectedMessageError";
}

/** Persisted client group state cannot be decoded. */
export class ClientStateDecodeError extends Error {
  override name = "ClientStateDecodeError";
}

/** Capabilities every Phoenix leaf advertises: ts-mls defaults plus the Phoenix extensions. */
export function phoenixCapabilities(): Capabilities {
  const caps = defaultCapabilities();
  const ours = Object.values(PHOENIX_EXTENSION_TYPES);
  return { ...caps, extensions: [...caps.extensions.filter((e) => !ours.some((o) => o === e)), ...ours] };
}

/** Input of {@link createKeyPackage}. */
export interface KeyPackageInput {
  cipherSuite: CiphersuiteImpl;
  /** The leaf credential (Phoenix: Basic credential carrying the encoded leaf credential). */
  credential: Credential;
  /** The sealed queue config, carried opaquely in a KeyPackage extension. */
  queueConfig: Uint8Array;
  lastResort?: boolean;
  /** Validity in seconds from now; default 90 days. */
  lifetimeSeconds?: number;
  /** Reuse an existing signature key pair (needed for resync); default a fresh one. */
  signatureKeyPair?: { signKey: Uint8Array; publicKey: Uint8Array };
}

/** A KeyPackage with Phoenix's queue-config extension and, optionally, the last-resort marker. */
export async function createKeyPackage(
  input: KeyPackageInput,
): Promise<{ publicPackage: KeyPackage; privatePackage: PrivateKeyPackage }> {
  const now = BigInt(Math.floor(Date.now() / 1000));
  const lifetime = { notBefore: now - 60n, notAfter: now + BigInt(input.lifetimeSeconds ?? 90 * 24 * 3600) };
  const extensions: Extension[] = [
    { extensionType: PHOENIX_EXTENSION_TYPES.queueConfig, extensionData: input.queueConfig },
  ];
  if (input.lastResort === true)
    extensions.push({ extensionType: PHOENIX_EXTENSION_TYPES.lastResort, extensionData: new Uint8Array(0) });
  const caps = phoenixCapabilities();
  return input.signatureKeyPair === undefined
    ? generateKeyPackage(input.credential, caps, lifetime, extensions, input.cipherSuite)
    : generateKeyPackageWithKey(
        input.credential,
        caps,
        lifetime,
        extensions,
        input.signatureKeyPair,
        input.cipherSuite,
      );
}

/** What every group-changing operation returns: the new state and what to upload to the DS. */
export interface CommitOutput {
  newState: ClientState;
  /** The commit as an MLSMessage (PublicMessage) — the DS validates it. */
  commit: Uint8Array;
  /** The Welcome as an MLSMessage when members were added. */
  welcome: Uint8Array | undefined;
  /** The new epoch's GroupInfo (with external_pub) as an MLSMessage, for the DS to check and serve. */
  groupInfo: Uint8Array;
}

/** Common options of operations that send a handshake message. */
export interface SendOptions {
  /** Authenticated data (signed, readable by the DS). */
  aad?: Uint8Array;
}

async function groupInfoBytes(state: ClientState, cs: CiphersuiteImpl): Promise<Uint8Array> {
  const groupInfo = await createGroupInfoWithExternalPub(state, [], cs);
  return encodeMlsMessage({ version: "mls10", wireformat: "mls_group_info", groupInfo });
}

function welcomeBytes(welcome: Welcome | undefined): Uint8Array | undefined {
  return welcome === undefined
    ? undefined
    : encodeMlsMessage({ version: "mls10", wireformat: "mls_welcome", welcome });
}

async function commit(
  state: ClientState,
  cs: CiphersuiteImpl,
  proposals: Proposal[],
  options: SendOptions,
): Promise<CommitOutput> {
  const res = await createCommit(
    { state, cipherSuite: cs },
    // Handshake messages are PublicMessages so the DS can validate them.
    {
      wireAsPublicMessage: true,
      extraProposals: proposals,
      authenticatedData: options.aad ?? new Uint8Array(0),
    },
  );
  return {
    newState: res.newState,
    commit: encodeMlsMessage(res.commit),
    welcome: welcomeBytes(res.welcome),
    groupInfo: await groupInfoBytes(res.newState, cs),
  };
}

/** Input of {@link createPhoenixGroup}. */
export interface CreateGroupInput {
  cipherSuite: CiphersuiteImpl;
  groupId: Uint8Array;
  keyPackage: KeyPackage;
  privateKeyPackage: PrivateKeyPackage;
  /** Initial roles (typically the creator as admin). */
  roles: readonly RoleAssignment[];
  clientConfig?: ClientConfig;
}

/** Create a group whose GroupContext carries the roles extension; returns its first GroupInfo for the DS. */
export async function createPhoenixGroup(
  input: CreateGroupInput,
): Promise<{ state: ClientState; groupInfo: Uint8Array }> {
  const state = await createGroup(
    input.groupId,
    input.keyPackage,
    input.privateKeyPackage,
    [rolesExtension(input.roles)],
    input.cipherSuite,
    input.clientConfig,
  );
  return { state, groupInfo: await groupInfoBytes(state, input.cipherSuite) };
}

/** Commit Adds for the given KeyPackages (and any pending proposals). */
export function addMembers(
  state: ClientState,
  cs: CiphersuiteImpl,
  keyPackages: readonly KeyPackage[],
  options: SendOptions = {},
): Promise<CommitOutput> {
  return commit(
    state,
    cs,
    keyPackages.map((keyPackage) => ({ proposalType: "add", add: { keyPackage } })),
    options,
  );
}

/** Commit Removes of the given leaves (with an UpdatePath). */
export function removeMembers(
  state: ClientState,
  cs: CiphersuiteImpl,
  leafIndices: readonly number[],
  options: SendOptions = {},
): Promise<CommitOutput> {
  return commit(
    state,
    cs,
    leafIndices.map((removed) => ({ proposalType: "remove", remove: { removed } })),
    options,
  );
}

/** Commit with an UpdatePath: fresh leaf and path keys (Phoenix's "update"); pending proposals are included too. */
export function updateOwnLeaf(
  state: ClientState,
  cs: CiphersuiteImpl,
  options: SendOptions = {},
): Promise<CommitOutput> {
  return commit(state, cs, [], options);
}

/** Commit every pending proposal (e.g. a member's self-remove). */
export function commitPendingProposals(
  state: ClientState,
  cs: CiphersuiteImpl,
  options: SendOptions = {},
): Promise<CommitOutput> {
  return commit(state, cs, [], options);
}

/** Commit a change of the roles GroupContext extension, keeping the group's other extensions. */
export function setRoles(
  state: ClientState,
  cs: CiphersuiteImpl,
  roles: readonly RoleAssignment[],
  options: SendOptions = {},
): Promise<CommitOutput> {
  const others = state.groupContext.extensions.filter(
    (e) => e.extensionType !== PHOENIX_EXTENSION_TYPES.roles,
  );
  return commit(
    state,
    cs,
    [
      {
        proposalType: "group_context_extensions",
        groupContextExtensions: { extensions: [...others, rolesExtension(roles)] },
      },
    ],
    options,
  );
}

/** Propose removing oneself; another member commits it. Returns the proposal as MLSMessage (PublicMessage). */
export async function proposeSelfRemove(
  state: ClientState,
  cs: CiphersuiteImpl,
  options: SendOptions = {},
): Promise<{ newState: ClientState; proposal: Uint8Array }> {
  const res = await createProposal(
    state,
    true,
    { proposalType: "remove", remove: { removed: state.privatePath.leafIndex } },
    cs,
    options.aad,
  );
  return { newState: res.newState, proposal: encodeMlsMessage(res.message) };
}

/** Join from a Welcome; `ratchetTree` is the tree the DS serves for the Welcome's epoch. */
export async function joinFromWelcome(
  welcome: Uint8Array,
  keyPackage: KeyPackage,
  privateKeyPackage: PrivateKeyPackage,
  cs: CiphersuiteImpl,
  ratchetTree?: RatchetTree,
  clientConfig?: ClientConfig,
): Promise<ClientState> {
  const msg = parseMlsMessage(welcome);
  if (msg.wireformat !== "mls_welcome")
    throw new UnexpectedMessageError(`expected a Welcome, got ${msg.wireformat}`);
  return joinGroupFromWelcome(msg.welcome, keyPackage, privateKeyPackage, cs, ratchetTree, clientConfig);
}

function groupInfoFrom(bytes: Uint8Array): GroupInfo {
  const msg = parseMlsMessage(bytes);
  if (msg.wireformat !== "mls_group_info")
    throw new UnexpectedMessageError(`expected a GroupInfo, got ${msg.wireformat}`);
  return msg.groupInfo;
}

/** Join by external commit from the group's GroupInfo (with external_pub) and tree. */
export async function joinExternally(
  groupInfo: Uint8Array,
  keyPackage: KeyPackage,
  privateKeyPackage: PrivateKeyPackage,
  cs: CiphersuiteImpl,
  ratchetTree?: RatchetTree,
  options: SendOptions & { clientConfig?: ClientConfig } = {},
): Promise<CommitOutput> {
  const res = await joinGroupByExternalCommit(
    groupInfoFrom(groupInfo),
    keyPackage,
    privateKeyPackage,
    false,
    cs,
    ratchetTree,
    options.clientConfig,
    options.aad,
  );
  return {
    newState: res.newState,
    commit: encodeMlsMessage({
      version: "mls10",
      wireformat: "mls_public_message",
      publicMessage: res.publicMessage,
    }),
    welcome: undefined,
    groupInfo: await groupInfoBytes(res.newState, cs),
  };
}

/** Input of {@link resync}. */
export interface ResyncInput {
  cipherSuite: CiphersuiteImpl;
  /** Current GroupInfo (with external_pub) from the DS. */
  groupInfo: Uint8Array;
  ratchetTree?: RatchetTree;
  credential: Credential;
  /** The client's signature key pair in this group: it identifies the leaf being replaced. */
  signatureKeyPair: { signKey: Uint8Array; publicKey: Uint8Array };
  queueConfig: Uint8Array;
  clientConfig?: ClientConfig;
  aad?: Uint8Array;
}

/**
 * Rejoin by external commit, replacing one's own leaf (after losing state). Checks first that the
 * tree has a leaf with this signature key and credential: ts-mls 1.6.4 loops forever otherwise.
 */
export async function resync(input: ResyncInput): Promise<CommitOutput> {
  const gi = groupInfoFrom(input.groupInfo);
  const tree = input.ratchetTree;
  const treeExt = gi.extensions.some((e) => e.extensionType === "ratchet_tree");
  if (tree === undefined && !treeExt) throw new UnexpectedMessageError("resync needs the ratchet tree");
  const effective = ratchetTreeFromExtension(gi) ?? tree ?? [];
  const credentialBytes = encodeCredential(input.credential);
  const found = effective.some(
    (n) =>
      n?.nodeType === "leaf" &&
      bytesEqual(n.leaf.signaturePublicKey, input.signatureKeyPair.publicKey) &&
      bytesEqual(encodeCredential(n.leaf.credential), credentialBytes),
  );
  if (!found)
    throw new ResyncLeafNotFoundError("no leaf with this signature key and credential in the group");
  const kp = await createKeyPackage({
    cipherSuite: input.cipherSuite,
    credential: input.credential,
    queueConfig: input.queueConfig,
    signatureKeyPair: input.signatureKeyPair,
  });
  const res = await joinGroupByExternalCommit(
    gi,
    kp.publicPackage,
    kp.privatePackage,
    true,
    input.cipherSuite,
    tree,
    input.clientConfig,
    input.aad,
  );
  return {
    newState: res.newState,
    commit: encodeMlsMessage({
      version: "mls10",
      wireformat: "mls_public_message",
      publicMessage: res.publicMessage,
    }),
    welcome: undefined,
    groupInfo: await groupInfoBytes(res.newState, input.cipherSuite),
  };
}

/** Encrypt an application message; application messages are always PrivateMessages. */
export async function encryptMessage(
  state: ClientState,
  cs: CiphersuiteImpl,
  plaintext: Uint8Array,
  options: SendOptions = {},
): Promise<{ newState: ClientState; message: Uint8Array }> {
  const res = await createApplicationMessage(state, plaintext, cs, options.aad);
  return {
    newState: res.newState,
    message: encodeMlsMessage({
      version: "mls10",
      wireformat: "mls_private_message",
      privateMessage: res.privateMessage,
    }),
  };
}

/** Result of {@link processIncoming}. */
export type IncomingResult =
  | { kind: "application"; newState: ClientState; plaintext: Uint8Array; aad: Uint8Array }
  | { kind: "handshake"; newState: ClientState; removedFromGroup: boolean };

/**
 * Whether a commit's proposals remove `leafIndex`: a Remove naming it, by value or by reference to
 * a proposal stored in `state` (the state the commit applies to).
 */
export function proposalsRemoveLeaf(
  state: ClientState,
  proposals: readonly ProposalOrRef[],
  leafIndex: number,
): boolean {
  return proposals.some((p) => {
    const proposal =
      p.proposalOrRefType === "proposal"
        ? p.proposal
        : state.unappliedProposals[Buffer.from(p.reference).toString("base64")]?.proposal;
    return proposal?.proposalType === "remove" && proposal.remove.removed === leafIndex;
  });
}

/**
 * Whether `msg` is an authentic commit of the current epoch that removes this member. The
 * framing is verified first (membership tag and signature for a PublicMessage, decryption and
 * signature for a PrivateMessage), so a forged commit cannot make a member think it was removed.
 * Decided here, not by ts-mls: 1.6.4 looks at the member's leaf after all proposals, and a commit
 * that also adds a joiner on the freed leaf makes it fail on an UpdatePath it cannot decrypt.
 */
async function authenticCommitRemovesSelf(
  state: ClientState,
  cs: CiphersuiteImpl,
  msg: MLSMessage,
): Promise<boolean> {
  const me = state.privatePath.leafIndex;
  if (msg.wireformat === "mls_public_message") {
    const content = msg.publicMessage.content;
    if (content.contentType !== "commit" || content.epoch !== state.groupContext.epoch) return false;
    if (!proposalsRemoveLeaf(state, content.commit.proposals, me)) return false;
    await unprotectPublicMessage(
      state.keySchedule.membershipKey,
      state.groupContext,
      state.ratchetTree,
      msg.publicMessage,
      cs,
    );
    return true;
  }
  if (msg.wireformat === "mls_private_message") {
    const pm = msg.privateMessage;
    if (pm.contentType !== "commit" || pm.epoch !== state.groupContext.epoch) return false;
    const opened = await unprotectPrivateMessage(
      state.keySchedule.senderDataSecret,
      pm,
      state.secretTree,
      state.ratchetTree,
      state.groupContext,
      state.clientConfig.keyRetentionConfig,
      cs,
    );
    const content = opened.content.content;
    return content.contentType === "commit" && proposalsRemoveLeaf(state, content.commit.proposals, me);
  }
  return false;
}

/** The state of a member a commit removed: no longer active, pending proposals dropped. */
function removedState(state: ClientState): ClientState {
  return { ...state, unappliedProposals: {}, groupActiveState: { kind: "removedFromGroup" } };
}

/**
 * Process an incoming MLSMessage: PublicMessage commits/proposals or PrivateMessages. Private
 * messages go through processPrivateMessage (ts-mls 1.6.4's processMessage drops the PSK index).
 * An authentic commit removing this member ends membership without ts-mls processing it.
 */
export async function processIncoming(
  state: ClientState,
  cs: CiphersuiteImpl,
  bytes: Uint8Array,
): Promise<IncomingResult> {
  const msg: MLSMessage = parseMlsMessage(bytes);
  if (await authenticCommitRemovesSelf(state, cs, msg))
    return { kind: "handshake", newState: removedState(state), removedFromGroup: true };
  if (msg.wireformat === "mls_public_message") {
    const res = await processPublicMessage(state, msg.publicMessage, emptyPskIndex, cs);
    return {
      kind: "handshake",
      newState: res.newState,
      removedFromGroup: res.newState.groupActiveState.kind === "removedFromGroup",
    };
  }
  if (msg.wireformat === "mls_private_message") {
    const res = await processPrivateMessage(state, msg.privateMessage, emptyPskIndex, cs);
    if (res.kind === "applicationMessage")
      return {
        kind: "application",
        newState: res.newState,
        plaintext: res.message,
        aad: msg.privateMessage.authenticatedData,
      };
    return {
      kind: "handshake",
      newState: res.newState,
      removedFromGroup: res.newState.groupActiveState.kind === "removedFromGroup",
    };
  }
  throw new UnexpectedMessageError(`a group member does not process ${msg.wireformat}`);
}

const STATE_FORMAT = 1;

/** Serialise a client's group state (secrets included: store it encrypted). */
export function encodeClientState(state: ClientState): Uint8Array {
  const body = encodeGroupState(state);
  const out = new Uint8Array(body.length + 1);
  out[0] = STATE_FORMAT;
  out.set(body, 1);
  return out;
}

/** Restore what {@link encodeClientState} produced; the client config is not stored and is supplied here. */
export function decodeClientState(
  bytes: Uint8Array,
  clientConfig: ClientConfig = defaultClientConfig,
): ClientState {
  if (bytes[0] !== STATE_FORMAT) throw new ClientStateDecodeError(`unknown client state format ${bytes[0]}`);
  let decoded: ReturnType<typeof decodeGroupState>;
  try {
    decoded = decodeGroupState(bytes, 1);
  } catch (e) {
    throw new ClientStateDecodeError(`cannot decode client state: ${(e as Error).message}`);
  }
  if (decoded === undefined || decoded[1] + 1 !== bytes.length)
    throw new ClientStateDecodeError("cannot decode client state");
  return { ...decoded[0], clientConfig };
}
