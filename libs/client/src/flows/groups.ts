// Group flows: create a conversation, send, invite (AddPackages + Welcome + attribution), remove,
// self-update, leave (self-remove proposal), delete; a DS refusal that catching up cures is retried.
import {
  decodeAddPackage,
  decodeFriendshipPackage,
  decryptLeafSecrets,
  formatUserId,
  LeafCredential,
  parseUserId,
  sealClientInfo,
  sealWelcomeAttribution,
} from "@phoenix/crypto";
import {
  addMembers,
  proposeSelfRemove,
  type RoleAssignment,
  removeMembers,
  roleOf,
  rolesOf,
  setRoles,
  updateOwnLeaf,
} from "@phoenix/mls";
import { delivery } from "@phoenix/proto";
import { eq } from "drizzle-orm";
import type { KeyPackage } from "ts-mls";
import { decodeKeyPackage } from "ts-mls/keyPackage.js";
import { DS } from "../constants.js";
import type { ClientCore } from "../core/client-core.js";
import { dsSigned, leafOf, stateOf } from "../core/conversations.js";
import { NotAContactError } from "../errors.js";
import { mlsGroupId, toB64 } from "../protocol/helpers.js";
import { leafIdentities } from "../protocol/tree.js";
import { u8 } from "../store/client-store.js";
import * as t from "../store/schema.js";
import type { SyncResult } from "../types.js";
import { commitPending, earKeyAfter, requiredLeaves, submitCommit } from "./commits.js";
import { catchUpMayHelp } from "./ds-errors.js";
import { createGroup, sendApp } from "./group-primitives.js";
import { drainQsQueue } from "./receiving.js";

/** A client of an invited contact: its KeyPackage and the client info sealed for the group. */
interface Joiner {
  userId: string;
  kp: KeyPackage;
  info: Uint8Array;
  friendshipKey: Uint8Array;
}

/** Creates a group conversation with this client as its only member (and admin). */
export async function createConversation(core: ClientCore, title: string): Promise<string> {
  return (await createGroup(core, "group", title, null)).id;
}

/** Sends a text message. */
export function sendMessage(core: ClientCore, conversationId: string, text: string): Promise<void> {
  return withCatchUp(core, conversationId, async () => {
    const c = core.conversations.activeRow(conversationId);
    await sendApp(core, c, { type: "text", body: text }, () =>
      core.conversations.insertMessage(c.id, "text", core.identity.userId, text, true),
    );
  });
}

/** Adds contacts (all their clients) to a group conversation. */
export async function invite(
  core: ClientCore,
  conversationId: string,
  userIds: readonly string[],
): Promise<void> {
  const credentialKey = core.conversations.activeRow(conversationId).credentialKey;
  const joiners: Joiner[] = [];
  for (const userId of userIds) joiners.push(...(await joinersOf(core, userId, credentialKey)));
  if (joiners.length === 0) return;
  await commitWithCatchUp(core, conversationId, () => addJoiners(core, conversationId, joiners));
  // The joiners learn the group's title from its members, not from MLS; and everyone learns the
  // joiners' profile keys (from their friendship packages) before the joiners come online to
  // hand the DS their own.
  const c = core.conversations.activeRow(conversationId);
  const profileKeys: Record<string, string> = {};
  for (const userId of new Set(joiners.map((j) => j.userId))) {
    const contact = core.store.db.select().from(t.contacts).where(eq(t.contacts.userId, userId)).get();
    if (contact !== undefined)
      profileKeys[userId] = toB64(decodeFriendshipPackage(u8(contact.friendshipPackage)).userProfileKey);
  }
  await sendApp(core, c, { type: "title", title: c.title, profileKeys });
}

/**
 * The clients of contact `userId`, from the AddPackages the QS of its domain keeps: each verified
 * to belong to that user, with its client info sealed under the group's credential key.
 */
async function joinersOf(core: ClientCore, userId: string, credentialKey: Uint8Array): Promise<Joiner[]> {
  const contact = core.store.db.select().from(t.contacts).where(eq(t.contacts.userId, userId)).get();
  if (contact === undefined) throw new NotAContactError(`${userId} is not a contact`);
  const fp = decodeFriendshipPackage(u8(contact.friendshipPackage));
  // The contact's AddPackages are kept by the QS of its domain.
  const domain = parseUserId(userId).domain;
  const fetched = await core.transport.queue.fetchAddPackages({
    friendshipToken: fp.friendshipToken,
    domain: domain === core.account.domain ? "" : domain,
  });
  await core.trust.learnCredentials(domain);
  const joiners: Joiner[] = [];
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
    const credential = core.trust.verifier.verifyClientCredential(secrets.clientCredential);
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
  return joiners;
}

/** Commits the joiners' additions with a Welcome (and its attribution for each joiner). */
async function addJoiners(
  core: ClientCore,
  conversationId: string,
  joiners: readonly Joiner[],
): Promise<void> {
  const c = core.conversations.activeRow(conversationId);
  const state = stateOf(c);
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
      senderKey: core.identity.clientKey,
      senderCredential: core.identity.credential,
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
    core.conversations.saveState(c.id, out.newState, nextKey);
    core.members.applyMembership(
      c,
      out.newState,
      joiners.map((j) => j.info),
      core.identity.userId,
    );
  });
}

/** Removes users (all their clients) from a group conversation. */
export function remove(core: ClientCore, conversationId: string, userIds: readonly string[]): Promise<void> {
  return commitWithCatchUp(core, conversationId, async () => {
    const c = core.conversations.activeRow(conversationId);
    const leaves = core.members.leavesOf(c.id, userIds);
    if (leaves.length === 0) return;
    const state = stateOf(c);
    const out = await removeMembers(state, core.cs, leaves);
    const nextKey = await earKeyAfter(core, state, out);
    await submitCommit(core, c, out, nextKey);
    core.store.transaction(() => {
      core.conversations.saveState(c.id, out.newState, nextKey);
      core.members.applyMembership(c, out.newState, [], core.identity.userId);
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
  return commitWithCatchUp(core, conversationId, async () => {
    const c = core.conversations.activeRow(conversationId);
    const state = stateOf(c);
    const identities = leafIdentities(state);
    const roles: RoleAssignment[] = [...(rolesOf(state.groupContext) ?? [])];
    for (const leafIndex of core.members.leavesOf(c.id, userIds)) {
      const identity = identities.get(leafIndex);
      if (identity === undefined) continue;
      const pseudonym = LeafCredential.decode(identity).identity;
      if (roleOf(roles, { kind: "pseudonym", pseudonym }) !== "admin")
        roles.push({ subject: { kind: "pseudonym", pseudonym }, role: "admin" });
    }
    const out = await setRoles(state, core.cs, roles);
    const nextKey = await earKeyAfter(core, state, out);
    await submitCommit(core, c, out, nextKey);
    core.conversations.saveState(c.id, out.newState, nextKey);
  });
}

/**
 * Refreshes this client's key material in a group (a commit with an UpdatePath): post-compromise
 * security; membership stays the same. Apps call it periodically.
 */
export function updateKeys(core: ClientCore, conversationId: string): Promise<void> {
  return commitWithCatchUp(core, conversationId, async () => {
    const c = core.conversations.activeRow(conversationId);
    const state = stateOf(c);
    const out = await updateOwnLeaf(state, core.cs);
    const nextKey = await earKeyAfter(core, state, out);
    await submitCommit(core, c, out, nextKey);
    core.store.transaction(() => {
      core.conversations.saveState(c.id, out.newState, nextKey);
      core.members.applyMembership(c, out.newState, [], core.identity.userId);
    });
  });
}

/**
 * Leaves a conversation: a self-remove proposal the DS stores; the next commit by another member
 * carries it, and this client sees the conversation inactive once that commit arrives.
 */
export function leave(core: ClientCore, conversationId: string): Promise<void> {
  return withCatchUp(core, conversationId, async () => {
    const c = core.conversations.activeRow(conversationId);
    const { newState, proposal } = await proposeSelfRemove(stateOf(c), core.cs);
    await core.transport.delivery.selfRemove({
      signed: await dsSigned(c, delivery.SelfRemoveTbs, DS.selfRemove, {
        groupId: c.groupId,
        removeProposals: [proposal],
      }),
      groupStateEarKey: c.earKey,
    });
    core.store.transaction(() => {
      core.conversations.saveState(c.id, newState);
      core.members.markLeaving(c.id, core.identity.userId);
    });
  });
}

/** Deletes a group (admins): every other member is removed, then the DS forgets the group. */
export function deleteConversation(core: ClientCore, conversationId: string): Promise<void> {
  return withCatchUp(core, conversationId, async () => {
    const c = core.conversations.activeRow(conversationId);
    const me = leafOf(c);
    const others = core.members
      .rowsOf(c.id)
      .map((m) => m.leafIndex)
      .filter((l) => l !== me);
    const out = await removeMembers(stateOf(c), core.cs, others);
    await core.transport.delivery.deleteGroup({
      signed: await dsSigned(c, delivery.DeleteGroupTbs, DS.deleteGroup, {
        groupId: c.groupId,
        commit: out.commit,
      }),
      groupStateEarKey: c.earKey,
    });
    core.store.transaction(() => {
      core.conversations.setInactive(c.id);
      core.conversations.insertEvent(c.id, { type: "deleted", actor: core.identity.userId, users: [] }, true);
    });
  });
}

/**
 * {@link withCatchUp} for an operation that moves the group to a new epoch: the QS queue is read
 * first. That matters to a member that commits without being refused (a group's only admin):
 * messages of the current epoch waiting in its queue stay readable after its commit only while
 * ts-mls keeps that epoch's secrets (4 epochs); a committer that moved further on lost them
 * ("epoch too old", found by the chaos run). A queue that cannot be read now does not stop the
 * operation.
 */
export async function commitWithCatchUp<T>(
  core: ClientCore,
  conversationId: string,
  op: () => Promise<T>,
): Promise<T> {
  await drainQsQueue(core, { processed: 0, errors: [] }, new Set()).catch(() => undefined);
  return withCatchUp(core, conversationId, op);
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
      const before = core.conversations.row(conversationId).state?.groupContext.epoch;
      const result: SyncResult = { processed: 0, errors: [] };
      await drainQsQueue(core, result, new Set());
      // Removals the DS requires are not proposals ts-mls includes by itself: commit them first.
      if (requiredLeaves(core, conversationId).length > 0) await commitPending(core, conversationId, result);
      // The commit that moved the group on may still be on its way through the fan-out.
      if (core.conversations.row(conversationId).state?.groupContext.epoch === before)
        await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
