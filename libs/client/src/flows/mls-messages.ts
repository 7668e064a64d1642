// Processing one MLS message from the QS queue: an application message (text, title, friendship
// keys), a stored proposal (a member leaving), or a commit (membership, EAR key rotation).
import { decodeFriendshipPackage, toHex } from "@phoenix/crypto";
import { commitRemovesMembers, exportGroupStateEarKey, parseMlsMessage, processIncoming } from "@phoenix/mls";
import { and, eq } from "drizzle-orm";
import type { ClientState } from "ts-mls";
import type { ClientCore } from "../core/client-core.js";
import type { ConversationRow } from "../core/conversations.js";
import { safeCommitAad } from "../protocol/codecs.js";
import { decodeAppContent, fromB64, privateMessageSender } from "../protocol/helpers.js";
import * as t from "../store/schema.js";
import { fetchProfiles, refreshMemberProfiles } from "./member-profiles.js";
import { forgetProfileKeyDue, profileKeyDue } from "./profile-key.js";

/** What the public framing of a handshake message says: its sender leaf, its AAD, its kind. */
interface HandshakeInfo {
  sender: number | "external";
  aad: Uint8Array;
  proposal: boolean;
}

/** What processing an incoming handshake message (a commit or proposal) gives. */
type ProcessedHandshake = Extract<Awaited<ReturnType<typeof processIncoming>>, { kind: "handshake" }>;

/**
 * Processes one MLS message of an active conversation (others are ignored); conversations with a
 * proposal to commit, or a profile key to hand over, are added to `pending`.
 */
export async function receiveMls(core: ClientCore, bytes: Uint8Array, pending: Set<string>): Promise<void> {
  const msg = parseMlsMessage(bytes);
  let groupId: Uint8Array;
  let handshake: HandshakeInfo | undefined;
  if (msg.wireformat === "mls_public_message") {
    const content = msg.publicMessage.content;
    groupId = content.groupId;
    const sender = content.sender;
    handshake = {
      sender: sender.senderType === "member" ? sender.leafIndex : "external",
      aad: content.authenticatedData,
      proposal: content.contentType === "proposal",
    };
  } else if (msg.wireformat === "mls_private_message") {
    groupId = msg.privateMessage.groupId;
  } else return;
  const privateMessage = msg.wireformat === "mls_private_message" ? msg.privateMessage : undefined;
  const id = toHex(groupId);
  const conv = core.conversations.row(id);
  if (conv.status !== "active" || conv.state === undefined) return;
  const senderLeaf =
    privateMessage === undefined
      ? undefined
      : await privateMessageSender(conv.state, privateMessage, core.cs);
  const res = await processIncoming(conv.state, core.cs, bytes);
  if (res.kind === "application") {
    const sender =
      senderLeaf === undefined
        ? undefined
        : core.members.senderOf(id, conv.state, senderLeaf.leafIndex, senderLeaf.leafCredential);
    return receiveApplication(core, conv, res.newState, res.plaintext, sender);
  }
  if (handshake?.proposal === true) {
    receiveProposal(core, id, handshake, res.newState);
    pending.add(id);
    return;
  }
  await receiveCommit(core, conv, conv.state, bytes, handshake, res, pending);
}

/** Stores an application message's effects: a text, a group title, a contact's friendship keys. */
async function receiveApplication(
  core: ClientCore,
  conv: ConversationRow,
  newState: ClientState,
  plaintext: Uint8Array,
  sender: string | undefined,
): Promise<void> {
  const id = conv.id;
  const app = decodeAppContent(plaintext);
  let learned: string[] = [];
  core.store.transaction(() => {
    core.conversations.saveState(id, newState);
    if (app?.type === "text") core.conversations.insertMessage(id, "text", sender, app.body, false);
    if (app?.type === "title" && conv.kind === "group" && sender !== undefined) {
      core.store.db.update(t.conversations).set({ title: app.title }).where(eq(t.conversations.id, id)).run();
      learned = learnInvitedKeys(core, id, app.profileKeys ?? {});
    }
    // The peer of a connection made by handle is learned from its leaf when it joins.
    const isPeer =
      conv.peerUserId === null
        ? conv.kind === "connection" && sender !== core.identity.userId
        : sender === conv.peerUserId;
    if (app?.type === "friendship" && sender !== undefined && isPeer) {
      if (conv.peerUserId === null)
        core.store.db
          .update(t.conversations)
          .set({ peerUserId: sender })
          .where(eq(t.conversations.id, id))
          .run();
      core.contacts.upsert(sender, decodeFriendshipPackage(fromB64(app.friendshipPackage)), id);
      core.store.db
        .update(t.connectionRequests)
        .set({ status: "accepted" })
        .where(
          and(eq(t.connectionRequests.conversationId, id), eq(t.connectionRequests.direction, "outgoing")),
        )
        .run();
    }
  });
  if (app?.type === "friendship" && sender !== undefined) await core.contacts.refreshProfile(sender);
  // Best effort: the message is processed whether or not the profiles can be read now.
  if (learned.length > 0) await fetchProfiles(core, learned);
  if (app?.type === "profile" && sender !== undefined && sender !== core.identity.userId)
    await refreshMemberProfiles(core, id, [sender], true).catch(() => undefined);
}

/**
 * Records the profile keys an inviter handed along for the users it added (members of `id`
 * only); the users whose key is new. A wrong key opens no profile: the user's own copy at the
 * DS (see refreshMemberProfiles) stays authoritative.
 */
function learnInvitedKeys(core: ClientCore, id: string, keys: Record<string, string>): string[] {
  const learned: string[] = [];
  for (const [userId, key] of Object.entries(keys)) {
    if (core.members.leavesOf(id, [userId]).length === 0) continue;
    const bytes = fromB64(key);
    if (bytes.length === 32 && core.profiles.rememberKey(userId, bytes)) learned.push(userId);
  }
  return learned;
}

/** A stored proposal (a member leaving): remember who; the caller commits it after this sync. */
function receiveProposal(
  core: ClientCore,
  id: string,
  handshake: HandshakeInfo,
  newState: ClientState,
): void {
  core.store.transaction(() => {
    if (handshake.sender !== "external") {
      const who = core.members.memberAt(id, handshake.sender);
      if (who !== undefined) core.members.markLeaving(id, who);
    }
    core.conversations.saveState(id, newState);
  });
}

/** Applies a commit: the new members (from the commit's client infos), a rotated EAR key, or our removal. */
async function receiveCommit(
  core: ClientCore,
  conv: ConversationRow,
  stateBefore: ClientState,
  bytes: Uint8Array,
  handshake: HandshakeInfo | undefined,
  res: ProcessedHandshake,
  pending: Set<string>,
): Promise<void> {
  const id = conv.id;
  const aad = safeCommitAad(handshake?.aad);
  const committer =
    handshake?.sender === "external" || handshake === undefined
      ? undefined
      : core.members.memberAt(id, handshake.sender);
  const infos = [
    ...(aad?.addedClientInfos ?? []),
    ...(aad && aad.senderClientInfo.length > 0 ? [aad.senderClientInfo] : []),
  ];
  // Joiners may be of domains this client has not met yet. Best effort: the commit is applied
  // whatever happens here (a joiner whose credential cannot be verified stays unattributed).
  if (!res.removedFromGroup)
    await core.members.learnJoinerCredentials(conv, res.newState, infos).catch(() => undefined);
  // A commit that removed someone rotated the group's EAR key: the DS stores the state under the
  // new epoch's exported key from now on (the removed member cannot derive it).
  const nextKey =
    !res.removedFromGroup && commitRemovesMembers(stateBefore, bytes)
      ? await exportGroupStateEarKey(res.newState, core.cs)
      : undefined;
  if (nextKey !== undefined && profileKeyDue(core, id)) pending.add(id);
  core.store.transaction(() => {
    if (res.removedFromGroup) {
      core.conversations.saveState(id, res.newState);
      core.conversations.setInactive(id);
      forgetProfileKeyDue(core, id);
      const self = core.identity.userId;
      core.conversations.insertEvent(
        id,
        core.members.takeLeaving(id, self)
          ? { type: "left", users: [self] }
          : { type: "removed", actor: committer, users: [self] },
        false,
      );
      return;
    }
    core.conversations.saveState(id, res.newState, nextKey);
    core.members.applyMembership(conv, res.newState, infos, committer);
  });
}
