// Group flows: create a conversation, send, invite (AddPackages + Welcome + attribution), remove,
// self-update, leave (self-remove proposal), delete, and committing proposals others left waiting.
import {
  decodeAddPackage,
  decodeFriendshipPackage,
  decryptLeafSecrets,
  encryptUserProfileKey,
  formatUserId,
  generateAeadKey,
  LeafCredential,
  parseUserId,
  sealClientInfo,
  sealWelcomeAttribution,
  toHex,
} from "@phoenix/crypto";
import {
  addMembers,
  type CommitOutput,
  commitPendingProposals,
  commitRemovesMembers,
  createPhoenixGroup,
  encryptMessage,
  exportGroupStateEarKey,
  proposeSelfRemove,
  type RoleAssignment,
  removeMembers,
  roleOf,
  rolesOf,
  setRoles,
  updateOwnLeaf,
} from "@phoenix/mls";
import { common, delivery, ERROR_DETAIL_TYPE_URL } from "@phoenix/proto";

import { GrpcCallError } from "@phoenix/runtime/grpc";
import { eq } from "drizzle-orm";
import type { ClientState, KeyPackage } from "ts-mls";
import { decodeKeyPackage } from "ts-mls/keyPackage.js";
import { encodeRatchetTree } from "ts-mls/ratchetTree.js";
import {
  type ClientCore,
  type ConversationRow,
  DS,
  FAILED_PRECONDITION,
  leafIdentities,
  UNAUTHENTICATED,
} from "../core.js";
import { NotAContactError } from "../errors.js";
import { encodeAppContent, mlsGroupId, signRequest } from "../protocol/helpers.js";
import { u8 } from "../store/client-store.js";
import * as t from "../store/schema.js";
import type { SyncResult } from "../types.js";
import { drainQsQueue, profileKeyDue, uploadProfileKey } from "./receiving.js";

/** Creates a group conversation with this client as its only member (and admin). */
export async function createConversation(core: ClientCore, title: string): Promise<string> {
  return (await createGroup(core, "group", title, null)).id;
}

/** Sends a text message. */
export function sendMessage(core: ClientCore, conversationId: string, text: string): Promise<void> {
  return withCatchUp(core, conversationId, async () => {
    const c = core.activeRow(conversationId);
    await sendApp(core, c, { type: "text", body: text });
    core.insertMessage(c.id, "text", core.userId, text, true);
  });
}

/** Adds contacts (all their clients) to a group conversation. */
export async function invite(
  core: ClientCore,
  conversationId: string,
  userIds: readonly string[],
): Promise<void> {
  const credentialKey = core.activeRow(conversationId).credentialKey;
  const joiners: { userId: string; kp: KeyPackage; info: Uint8Array; friendshipKey: Uint8Array }[] = [];
  for (const userId of userIds) {
    const contact = core.store.db.select().from(t.contacts).where(eq(t.contacts.userId, userId)).get();
    if (contact === undefined) throw new NotAContactError(`${userId} is not a contact`);
    const fp = decodeFriendshipPackage(u8(contact.friendshipPackage));
    // The contact's AddPackages are kept by the QS of its domain.
    const domain = parseUserId(userId).domain;
    const fetched = await core.transport.queue.fetchAddPackages({
      friendshipToken: fp.friendshipToken,
      domain: domain === core.account.domain ? "" : domain,
    });
    await core.learnCredentials(domain);
    for (const bytes of fetched.addPackages) {
      const ap = decodeAddPackage(bytes);
      const decoded = decodeKeyPackage(ap.keyPackage, 0);
      if (decoded === undefined) throw new Error(`malformed KeyPackage from ${userId}`);
      const kp = decoded[0];
      const leafCredential =
        kp.leafNode.credential.credentialType === "basic" ? kp.leafNode.credential.identity : undefined;
      if (leafCredential === undefined)
        throw new Error(`KeyPackage of ${userId} has no Phoenix leaf credential`);
      // The AddPackage's secrets open only under the friendship key: they come from the user we know.
      const secrets = decryptLeafSecrets(fp.friendshipEncryptionKey, "addPackage", leafCredential, ap);
      const credential = core.verifier.verifyClientCredential(secrets.clientCredential);
      if (formatUserId(credential.clientId.userId) !== userId)
        throw new Error(`an AddPackage fetched for ${userId} belongs to someone else`);
      LeafCredential.decode(leafCredential).verifyWith(credential, secrets.signatureEncryptionKey);
      const info = sealClientInfo(
        credentialKey,
        "group",
        leafCredential,
        credential,
        secrets.signatureEncryptionKey,
      );
      joiners.push({ userId, kp, info, friendshipKey: fp.friendshipEncryptionKey });
    }
  }
  if (joiners.length === 0) return;
  await withCatchUp(core, conversationId, async () => {
    const c = core.activeRow(conversationId);
    const state = core.stateOf(c);
    const aad = delivery.CommitAad.encode({
      addedClientInfos: joiners.map((j) => j.info),
      senderClientInfo: new Uint8Array(0),
    }).finish();
    const out = await addMembers(
      state,
      core.cs,
      joiners.map((j) => j.kp),
      { aad },
    );
    if (out.welcome === undefined) throw new Error("no Welcome for the added members");
    const welcome = out.welcome;
    // The joiners get the key the state is stored under after this commit.
    const nextKey = await earKeyAfter(core, state, out);
    const attributions = joiners.map((j) =>
      sealWelcomeAttribution({
        senderKey: core.clientKey,
        senderCredential: core.credential,
        groupId: mlsGroupId(c.groupId),
        welcome,
        groupKeys: {
          groupStateEarKey: nextKey ?? c.earKey,
          credentialEncryptionKey: c.credentialKey,
          userProfileKeyEncryptionKey: c.profileKeyKey,
        },
        friendshipEncryptionKey: j.friendshipKey,
      }),
    );
    await submitCommit(core, c, out, nextKey, { welcome, encryptedWelcomeAttributionInfos: attributions });
    core.store.transaction(() => {
      core.saveState(c.id, out.newState, nextKey);
      core.applyMembership(
        c,
        out.newState,
        joiners.map((j) => j.info),
        core.userId,
      );
    });
  });
  // The joiners learn the group's title from its members, not from MLS.
  const c = core.activeRow(conversationId);
  await sendApp(core, c, { type: "title", title: c.title });
}

/** Removes users (all their clients) from a group conversation. */
export function remove(core: ClientCore, conversationId: string, userIds: readonly string[]): Promise<void> {
  return withCatchUp(core, conversationId, async () => {
    const c = core.activeRow(conversationId);
    const leaves = core.leavesOf(c.id, userIds);
    if (leaves.length === 0) return;
    const state = core.stateOf(c);
    const out = await removeMembers(state, core.cs, leaves);
    const nextKey = await earKeyAfter(core, state, out);
    await submitCommit(core, c, out, nextKey);
    core.store.transaction(() => {
      core.saveState(c.id, out.newState, nextKey);
      core.applyMembership(c, out.newState, [], core.userId);
    });
  });
}

/**
 * Makes users (every leaf of each) admins of a group conversation: a commit of the group's roles
 * extension, which only an admin may make. Admins add and remove other users.
 */
export function grantAdmin(
  core: ClientCore,
  conversationId: string,
  userIds: readonly string[],
): Promise<void> {
  return withCatchUp(core, conversationId, async () => {
    const c = core.activeRow(conversationId);
    const state = core.stateOf(c);
    const identities = leafIdentities(state);
    const roles: RoleAssignment[] = [...(rolesOf(state.groupContext) ?? [])];
    for (const leafIndex of core.leavesOf(c.id, userIds)) {
      const identity = identities.get(leafIndex);
      if (identity === undefined) continue;
      const pseudonym = LeafCredential.decode(identity).identity;
      if (roleOf(roles, { kind: "pseudonym", pseudonym }) !== "admin")
        roles.push({ subject: { kind: "pseudonym", pseudonym }, role: "admin" });
    }
    const out = await setRoles(state, core.cs, roles);
    const nextKey = await earKeyAfter(core, state, out);
    await submitCommit(core, c, out, nextKey);
    core.saveState(c.id, out.newState, nextKey);
  });
}

/**
 * Refreshes this client's key material in a group (a commit with an UpdatePath): post-compromise
 * security; membership stays the same. Apps call it periodically.
 */
export function updateKeys(core: ClientCore, conversationId: string): Promise<void> {
  return withCatchUp(core, conversationId, async () => {
    const c = core.activeRow(conversationId);
    const state = core.stateOf(c);
    const out = await updateOwnLeaf(state, core.cs);
    const nextKey = await earKeyAfter(core, state, out);
    await submitCommit(core, c, out, nextKey);
    core.store.transaction(() => {
      core.saveState(c.id, out.newState, nextKey);
      core.applyMembership(c, out.newState, [], core.userId);
    });
  });
}

/**
 * Leaves a conversation: a self-remove proposal the DS stores; the next commit by another member
 * carries it, and this client sees the conversation inactive once that commit arrives.
 */
export function leave(core: ClientCore, conversationId: string): Promise<void> {
  return withCatchUp(core, conversationId, async () => {
    const c = core.activeRow(conversationId);
    const { newState, proposal } = await proposeSelfRemove(core.stateOf(c), core.cs);
    await core.transport.delivery.selfRemove({
      signed: await core.dsSigned(c, delivery.SelfRemoveTbs, DS.selfRemove, {
        groupId: c.groupId,
        removeProposals: [proposal],
      }),
      groupStateEarKey: c.earKey,
    });
    core.store.transaction(() => {
      core.saveState(c.id, newState);
      core.markLeaving(c.id, core.userId);
    });
  });
}

/** Deletes a group (admins): every other member is removed, then the DS forgets the group. */
export function deleteConversation(core: ClientCore, conversationId: string): Promise<void> {
  return withCatchUp(core, conversationId, async () => {
    const c = core.activeRow(conversationId);
    const me = core.leafOf(c);
    const others = core.store.db
      .select()
      .from(t.members)
      .where(eq(t.members.conversationId, c.id))
      .all()
      .map((m) => m.leafIndex)
      .filter((l) => l !== me);
    const out = await removeMembers(core.stateOf(c), core.cs, others);
    await core.transport.delivery.deleteGroup({
      signed: await core.dsSigned(c, delivery.DeleteGroupTbs, DS.deleteGroup, {
        groupId: c.groupId,
        commit: out.commit,
      }),
      groupStateEarKey: c.earKey,
    });
    core.store.transaction(() => {
      core.setInactive(c.id);
      core.insertMessage(c.id, "system", undefined, `${core.userId} deleted the conversation`, true);
    });
  });
}

export async function createGroup(
  core: ClientCore,
  kind: "group" | "connection",
  title: string,
  peer: string | null,
): Promise<ConversationRow> {
  const { groupId } = await core.transport.delivery.requestGroupId({});
  if (groupId === undefined) throw new Error("the DS returned no group id");
  const leaf = await core.newLeaf();
  const { state, groupInfo } = await createPhoenixGroup({
    cipherSuite: core.cs,
    groupId: mlsGroupId(groupId),
    keyPackage: leaf.keyPackage,
    privateKeyPackage: leaf.privateKeyPackage,
    roles: [{ subject: { kind: "pseudonym", pseudonym: leaf.leaf.identity }, role: "admin" }],
  });
  const earKey = generateAeadKey();
  const credentialKey = generateAeadKey();
  const profileKeyKey = kind === "connection" ? credentialKey : generateAeadKey();
  await core.transport.delivery.createGroup({
    signed: await signRequest(
      delivery.CreateGroupTbs,
      DS.createGroup,
      {
        groupId,
        ratchetTree: encodeRatchetTree(state.ratchetTree),
        groupInfo,
        creatorClientInfo: sealClientInfo(
          credentialKey,
          "group",
          leaf.leaf.bytes,
          core.credential,
          leaf.signatureEncryptionKey,
        ),
        creatorQueue: core.qsReference(),
        encryptedUserProfileKey: encryptUserProfileKey(profileKeyKey, core.user, core.account.profileKey),
      },
      leaf.leafKey,
      { $case: "leafIndex", value: 0 },
    ),
    groupStateEarKey: earKey,
  });
  const id = toHex(mlsGroupId(groupId));
  core.store.transaction(() => {
    core.insertConversation({
      id,
      groupId,
      kind,
      title,
      earKey,
      credentialKey,
      profileKeyKey,
      state,
      leaf,
      peerUserId: peer,
    });
    core.store.db.insert(t.members).values({ conversationId: id, leafIndex: 0, userId: core.userId }).run();
  });
  return core.row(id);
}

export async function sendApp(
  core: ClientCore,
  c: ConversationRow,
  content: Parameters<typeof encodeAppContent>[0],
): Promise<void> {
  const { newState, message } = await encryptMessage(core.stateOf(c), core.cs, encodeAppContent(content));
  await core.transport.delivery.sendMessage({
    signed: await core.dsSigned(c, delivery.SendMessageTbs, DS.sendMessage, {
      groupId: c.groupId,
      message,
      suppressNotifications: false,
    }),
    groupStateEarKey: c.earKey,
  });
  core.saveState(c.id, newState);
}

/**
 * Runs a group operation; when the DS refuses it in a way catching up can cure
 * ({@link catchUpMayHelp}) it catches up from the QS queue and tries again (bounded). A member
 * removed meanwhile finds the conversation inactive when it catches up: the retry fails with
 * ConversationInactiveError.
 */
export async function withCatchUp<T>(
  core: ClientCore,
  conversationId: string,
  op: () => Promise<T>,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await op();
    } catch (error) {
      if (!catchUpMayHelp(error) || attempt >= 50) throw error;
      const before = core.row(conversationId).state?.groupContext.epoch;
      const result: SyncResult = { processed: 0, errors: [] };
      await drainQsQueue(core, result, new Set());
      // Removals the DS requires are not proposals ts-mls includes by itself: commit them first.
      if (requiredLeaves(core, conversationId).length > 0) await commitPending(core, conversationId, result);
      // The commit that moved the group on may still be on its way through the fan-out.
      if (core.row(conversationId).state?.groupContext.epoch === before)
        await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/**
 * Whether the DS refused a group operation because this client is behind: another member's commit
 * is ahead, or stored proposals must be included (FAILED_PRECONDITION); a commit this client
 * has not processed yet removed it ({@link leafUnknownToDs}) or rotated the group's EAR key
 * ({@link earKeyRotated}).
 */
function catchUpMayHelp(error: unknown): boolean {
  if (!(error instanceof GrpcCallError)) return false;
  return error.code === FAILED_PRECONDITION || leafUnknownToDs(error) || earKeyRotated(error);
}

/**
 * Whether the DS refused the group's EAR key (UNAUTHENTICATED, WRONG_EAR_KEY): a commit that
 * removed a member rotated it and this client has not processed that commit yet — it derives
 * the new key when it does.
 */
export function earKeyRotated(error: unknown): boolean {
  return (
    error instanceof GrpcCallError &&
    error.code === UNAUTHENTICATED &&
    errorReason(error) === common.ErrorReason.ERROR_REASON_WRONG_EAR_KEY
  );
}

/**
 * Whether the DS refused a request signed by this client's leaf because the leaf is no longer
 * there — blank (UNAUTHENTICATED, unknown sender) or given to a joiner (UNAUTHENTICATED, bad
 * signature): a commit removed this client, and it is in (or on its way to) the client's queue.
 */
export function leafUnknownToDs(error: unknown): boolean {
  if (!(error instanceof GrpcCallError) || error.code !== UNAUTHENTICATED) return false;
  const reason = errorReason(error);
  return (
    reason === common.ErrorReason.ERROR_REASON_UNKNOWN_SENDER ||
    reason === common.ErrorReason.ERROR_REASON_BAD_SIGNATURE
  );
}

/** The reason of the Phoenix ErrorDetail a failed call carries, if any. */
function errorReason(error: GrpcCallError): common.ErrorReason | undefined {
  const packed = error.details.find((d) => d.typeUrl === ERROR_DETAIL_TYPE_URL);
  if (packed === undefined) return undefined;
  try {
    return common.ErrorDetail.decode(packed.value).reason;
  } catch {
    return undefined;
  }
}

/** Commits the proposals waiting in a group (a member's self-remove, DS-required removals). */
export async function commitPending(core: ClientCore, id: string, result: SyncResult): Promise<void> {
  // A profile key that waited for this client to learn the group's rotated EAR key.
  if (profileKeyDue(core, id))
    await uploadProfileKey(core, id).catch((error: Error) =>
      result.errors.push(`profile key upload: ${error.message}`),
    );
  const c = core.row(id);
  if (c.status !== "active" || c.state === undefined) return;
  const required = requiredLeaves(core, id);
  if (required.length === 0 && Object.keys(c.state.unappliedProposals).length === 0) return;
  // A removal commit also carries every pending proposal.
  const out =
    required.length > 0
      ? await removeMembers(c.state, core.cs, required)
      : await commitPendingProposals(c.state, core.cs);
  const nextKey = await earKeyAfter(core, c.state, out);
  try {
    await submitCommit(core, c, out, nextKey);
  } catch (error) {
    // Another member committed first: its commit is in our queue and brings us up to date. When
    // that commit removed someone (as one carrying a leave does) it also rotated the EAR key, and
    // the DS refuses our old key before it can compare epochs: WRONG_EAR_KEY means the same here.
    if (error instanceof GrpcCallError && error.code === FAILED_PRECONDITION) return;
    if (earKeyRotated(error)) return;
    result.errors.push(`commit of pending proposals: ${(error as Error).message}`);
    return;
  }
  core.store.transaction(() => {
    core.saveState(id, out.newState, nextKey);
    core.applyMembership(c, out.newState, [], core.userId);
    core.store.deleteKey(`required:${id}`);
  });
}

/**
 * Leaves the DS requires removed in the current epoch (its RequiredRemovals notice), still
 * occupied and not our own. A notice for another epoch is stale: the DS sends a fresh one with
 * every write, so leaf indices are never applied to a tree they were not meant for.
 */
export function requiredLeaves(core: ClientCore, id: string): number[] {
  const notice = core.store.getJson<{ epoch: string; leaves: number[] }>(`required:${id}`);
  const state = core.row(id).state;
  if (notice === undefined || state === undefined || BigInt(notice.epoch) !== state.groupContext.epoch)
    return [];
  const occupied = leafIdentities(state);
  const mine = state.privatePath.leafIndex;
  return [...new Set(notice.leaves)].filter((l) => l !== mine && occupied.has(l));
}

/**
 * The group's next EAR key when `out` removes someone (the MLS exporter of the new epoch: every
 * remaining member derives the same key from the commit, the removed cannot); undefined when the
 * commit keeps the key.
 */
export async function earKeyAfter(
  core: ClientCore,
  stateBefore: ClientState,
  out: CommitOutput,
): Promise<Uint8Array | undefined> {
  if (!commitRemovesMembers(stateBefore, out.commit)) return undefined;
  return exportGroupStateEarKey(out.newState, core.cs);
}

/**
 * Sends a commit (and its GroupInfo, and the Welcome of added clients) to the group's DS, with
 * the group's next EAR key when the commit removes someone.
 */
async function submitCommit(
  core: ClientCore,
  c: ConversationRow,
  out: { commit: Uint8Array; groupInfo: Uint8Array },
  nextEarKey: Uint8Array | undefined,
  addedClients?: delivery.AddedClientsInfo,
): Promise<void> {
  await core.transport.delivery.groupOperation({
    signed: await core.dsSigned(c, delivery.GroupOperationTbs, DS.groupOperation, {
      groupId: c.groupId,
      commit: out.commit,
      groupInfo: out.groupInfo,
      addedClients,
    }),
    groupStateEarKey: c.earKey,
    newGroupStateEarKey: nextEarKey,
  });
}
