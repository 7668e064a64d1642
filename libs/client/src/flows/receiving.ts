// Receiving: the AS connection queues and the QS queue, by dequeue or live listening; each
// message is decrypted with its queue ratchet and its effects persisted with the queue position.
import {
  AeadLabel,
  decodeFriendshipPackage,
  decryptAtRest,
  encryptUserProfileKey,
  formatUserId,
  HpkeKeyPair,
  handleHash,
  openWelcomeAttribution,
  SigningKey,
  toHex,
} from "@phoenix/crypto";
import {
  commitRemovesMembers,
  exportGroupStateEarKey,
  joinFromWelcome,
  parseMlsMessage,
  processIncoming,
} from "@phoenix/mls";
import { auth, type common, delivery, queue } from "@phoenix/proto";
import { and, eq } from "drizzle-orm";
import { decodeKeyPackage } from "ts-mls/keyPackage.js";
import { decodeRatchetTree } from "ts-mls/ratchetTree.js";
import { AS, type ClientCore, DS, decodePrivateKeyPackage, hexBytes, QS, safeCommitAad } from "../core.js";
import { type Listener, type ListenOptions, runQueueListener } from "../listener.js";
import {
  connectionQueueContext,
  decodeAppContent,
  fromB64,
  mlsGroupId,
  privateMessageSender,
  signRequest,
  welcomeEpoch,
} from "../protocol/helpers.js";
import { u8 } from "../store/client-store.js";
import * as t from "../store/schema.js";
import type { SyncResult } from "../types.js";
import { receiveOffer } from "./connections.js";
import { commitPending, earKeyRotated, leafUnknownToDs } from "./groups.js";
import { publishAddPackages } from "./registration.js";

/**
 * Fetches and processes everything queued for this client: connection offers from the AS
 * connection queue, group messages, commits and Welcomes from the QS queue. Then commits any
 * self-remove proposals that are waiting in a group.
 */
export async function sync(core: ClientCore): Promise<SyncResult> {
  const result: SyncResult = { processed: 0, errors: [] };
  await drainConnectionQueue(core, result);
  for (const h of core.storedHandles()) await drainHandleQueue(core, h, result);
  const pending = new Set<string>();
  await drainQsQueue(core, result, pending);
  for (const id of pending) await commitPending(core, id, result);
  return result;
}

/**
 * Listens live on the QS queue and the AS connection queue: everything that arrives is
 * processed (and persisted) at once, then acknowledged. The streams re-open after failures.
 */
export function listen(
  core: ClientCore,
  serial: <T>(fn: () => Promise<T>) => Promise<T>,
  options: ListenOptions = {},
): Listener {
  const report = (errors: string[]) => {
    for (const e of errors) options.onError?.(new Error(e));
  };
  const qs = runQueueListener<queue.ListenRequest, queue.ListenResponse>(
    {
      open: () => core.transport.queue.listen(),
      init: async () => ({
        request: {
          $case: "init",
          value: await core.qsSigned(queue.ListenTbs, QS.listen, { sequenceNumberStart: core.seq("qs") }),
        },
      }),
      ack: (upTo) => ({ request: { $case: "ack", value: { upToSequenceNumber: upTo } } }),
      event: (res) => res.event,
      handle: (m) =>
        serial(async () => {
          const result: SyncResult = { processed: 0, errors: [] };
          const pending = new Set<string>();
          await processQsMessage(core, m, result, pending);
          for (const id of pending) await commitPending(core, id, result);
          report(result.errors);
        }),
    },
    options,
  );
  const as = runQueueListener<auth.ListenConnectionOffersRequest, auth.ListenConnectionOffersResponse>(
    {
      open: () => core.transport.auth.listenConnectionOffers(),
      init: async () => ({
        request: {
          $case: "init",
          value: await core.asSigned(auth.ListenConnectionOffersTbs, AS.listenConnectionOffers, {
            sequenceNumberStart: core.seq("as"),
          }),
        },
      }),
      ack: (upTo) => ({ request: { $case: "ack", value: { upToSequenceNumber: upTo } } }),
      event: (res) => res.event,
      handle: (m) =>
        serial(async () => {
          const result: SyncResult = { processed: 0, errors: [] };
          await processOfferMessage(core, m, result);
          report(result.errors);
        }),
    },
    options,
  );
  return {
    async stop() {
      await Promise.all([qs.stop(), as.stop()]);
    },
  };
}

export async function drainConnectionQueue(core: ClientCore, result: SyncResult): Promise<void> {
  for (let page = 0; page < 100; page++) {
    const next = core.seq("as");
    const res = await core.transport.auth.dequeueConnectionOffers({
      signed: await core.asSigned(auth.DequeueConnectionOffersTbs, AS.dequeueConnectionOffers, {
        sequenceNumberStart: next,
        maxMessages: 0,
      }),
    });
    for (const m of res.messages) await processOfferMessage(core, m, result);
    if (res.remaining === 0n || res.messages.length === 0) return;
  }
}

export async function drainHandleQueue(
  core: ClientCore,
  h: { handle: string; keySeed: string; queueKey: string },
  result: SyncResult,
): Promise<void> {
  const key = HpkeKeyPair.fromPrivateBytes(hexBytes(h.queueKey));
  const handleKey = SigningKey.fromSeed(hexBytes(h.keySeed));
  const hash = handleHash(h.handle);
  const name = `handle:${h.handle}`;
  for (let page = 0; page < 100; page++) {
    const next = core.seq(name);
    const res = await core.transport.auth.dequeueHandleConnectionOffers({
      signed: await signRequest(
        auth.DequeueHandleConnectionOffersTbs,
        AS.dequeueHandleConnectionOffers,
        { sequenceNumberStart: next, maxMessages: 0 },
        handleKey,
        { $case: "handleHash", value: hash },
      ),
    });
    for (const m of res.messages) {
      if (m.sequenceNumber < core.seq(name)) continue;
      // A handle's queue ratchet is bound to the handle hash.
      const payload = core.openQueueMessage(name, key, hash, m);
      if (payload?.content?.$case === "connectionOffer") {
        try {
          await receiveOffer(core, payload.content.value);
        } catch (error) {
          result.errors.push(`connection offer to ${h.handle}: ${(error as Error).message}`);
        }
      }
      result.processed++;
    }
    if (res.remaining === 0n || res.messages.length === 0) return;
  }
}

export async function drainQsQueue(
  core: ClientCore,
  result: SyncResult,
  pending: Set<string>,
): Promise<void> {
  for (let page = 0; page < 100; page++) {
    const next = core.seq("qs");
    const res = await core.transport.queue.dequeue({
      signed: await core.qsSigned(queue.DequeueTbs, QS.dequeue, {
        sequenceNumberStart: next,
        maxMessages: 0,
      }),
    });
    for (const m of res.messages) await processQsMessage(core, m, result, pending);
    if (res.remaining === 0n || res.messages.length === 0) return;
  }
}

/** Processes one QS queue message unless it was processed before (redelivery). */
export async function processQsMessage(
  core: ClientCore,
  m: common.QueueMessage,
  result: SyncResult,
  pending: Set<string>,
): Promise<void> {
  if (m.sequenceNumber < core.seq("qs")) return;
  const key = HpkeKeyPair.fromPrivateBytes(core.account.qsQueueKey);
  const payload = core.openQueueMessage("qs", key, core.account.qsClientId, m);
  if (payload !== undefined) {
    try {
      await receivePayload(core, payload, pending);
    } catch (error) {
      result.errors.push(`${payload.content?.$case ?? "empty"}: ${(error as Error).message}`);
    }
  }
  result.processed++;
}

/** Processes one message of the client's AS connection queue unless it was processed before. */
export async function processOfferMessage(
  core: ClientCore,
  m: common.QueueMessage,
  result: SyncResult,
): Promise<void> {
  if (m.sequenceNumber < core.seq("as")) return;
  const key = HpkeKeyPair.fromPrivateBytes(core.account.connectionQueueKey);
  const context = connectionQueueContext(core.account.clientUuid, core.account.userUuid);
  const payload = core.openQueueMessage("as", key, context, m);
  if (payload?.content?.$case === "connectionOffer") {
    try {
      await receiveOffer(core, payload.content.value);
    } catch (error) {
      result.errors.push(`connection offer: ${(error as Error).message}`);
    }
  }
  result.processed++;
}

export async function receivePayload(
  core: ClientCore,
  payload: common.QueuePayload,
  pending: Set<string>,
): Promise<void> {
  const content = payload.content;
  if (content === undefined) return;
  if (content.$case === "welcomeBundle") return receiveWelcome(core, content.value, pending);
  if (content.$case === "mlsMessage") return receiveMls(core, content.value, pending);
  if (content.$case === "requiredRemovals") {
    // DS-induced removals (inactive clients, deleted queues): the next commit must carry them.
    const notice = content.value;
    if (notice.groupId === undefined) return;
    const id = toHex(mlsGroupId(notice.groupId));
    core.store.setJson(`required:${id}`, {
      epoch: notice.epoch.toString(),
      leaves: notice.removals.map((r) => r.leafIndex),
    });
    pending.add(id);
  }
}

export async function receiveMls(core: ClientCore, bytes: Uint8Array, pending: Set<string>): Promise<void> {
  const msg = parseMlsMessage(bytes);
  let groupId: Uint8Array;
  let commitInfo: { sender: number | "external"; aad: Uint8Array; proposal: boolean } | undefined;
  if (msg.wireformat === "mls_public_message") {
    const content = msg.publicMessage.content;
    groupId = content.groupId;
    const sender = content.sender;
    commitInfo = {
      sender: sender.senderType === "member" ? sender.leafIndex : "external",
      aad: content.authenticatedData,
      proposal: content.contentType === "proposal",
    };
  } else if (msg.wireformat === "mls_private_message") {
    groupId = msg.privateMessage.groupId;
  } else return;
  const privateMessage = msg.wireformat === "mls_private_message" ? msg.privateMessage : undefined;
  const id = toHex(groupId);
  const conv = core.row(id);
  if (conv.status !== "active" || conv.state === undefined) return;
  const senderLeaf =
    privateMessage === undefined
      ? undefined
      : await privateMessageSender(conv.state, privateMessage, core.cs);
  const res = await processIncoming(conv.state, core.cs, bytes);
  if (res.kind === "application") {
    const app = decodeAppContent(res.plaintext);
    const sender =
      senderLeaf === undefined
        ? undefined
        : core.senderOf(id, conv.state, senderLeaf.leafIndex, senderLeaf.leafCredential);
    core.store.transaction(() => {
      core.saveState(id, res.newState);
      if (app?.type === "text") core.insertMessage(id, "text", sender, app.body, false);
      if (app?.type === "title" && conv.kind === "group" && sender !== undefined)
        core.store.db
          .update(t.conversations)
          .set({ title: app.title })
          .where(eq(t.conversations.id, id))
          .run();
      // The peer of a connection made by handle is learned from its leaf when it joins.
      const isPeer =
        conv.peerUserId === null
          ? conv.kind === "connection" && sender !== core.userId
          : sender === conv.peerUserId;
      if (app?.type === "friendship" && sender !== undefined && isPeer) {
        if (conv.peerUserId === null)
          core.store.db
            .update(t.conversations)
            .set({ peerUserId: sender })
            .where(eq(t.conversations.id, id))
            .run();
        core.upsertContact(sender, decodeFriendshipPackage(fromB64(app.friendshipPackage)), id);
        core.store.db
          .update(t.connectionRequests)
          .set({ status: "accepted" })
          .where(
            and(eq(t.connectionRequests.conversationId, id), eq(t.connectionRequests.direction, "outgoing")),
          )
          .run();
      }
    });
    if (app?.type === "friendship" && sender !== undefined) await core.refreshProfile(sender);
    return;
  }
  if (commitInfo?.proposal === true) {
    // A stored proposal (a member leaving): remember who, and commit it after this sync.
    if (commitInfo.sender !== "external") {
      const who = core.memberAt(id, commitInfo.sender);
      if (who !== undefined) core.markLeaving(id, who);
    }
    core.saveState(id, res.newState);
    pending.add(id);
    return;
  }
  const aad = safeCommitAad(commitInfo?.aad);
  const committer =
    commitInfo?.sender === "external" || commitInfo === undefined
      ? undefined
      : core.memberAt(id, commitInfo.sender);
  const infos = [
    ...(aad?.addedClientInfos ?? []),
    ...(aad && aad.senderClientInfo.length > 0 ? [aad.senderClientInfo] : []),
  ];
  // Joiners may be of domains this client has not met yet. Best effort: the commit is applied
  // whatever happens here (a joiner whose credential cannot be verified stays unattributed).
  if (!res.removedFromGroup)
    await core.learnJoinerCredentials(conv, res.newState, infos).catch(() => undefined);
  // A commit that removed someone rotated the group's EAR key: the DS stores the state under the
  // new epoch's exported key from now on (the removed member cannot derive it).
  const nextKey =
    !res.removedFromGroup && commitRemovesMembers(conv.state, bytes)
      ? await exportGroupStateEarKey(res.newState, core.cs)
      : undefined;
  if (nextKey !== undefined && core.store.getJson(profileKeyDueKey(id)) !== undefined) pending.add(id);
  core.store.transaction(() => {
    if (res.removedFromGroup) {
      core.saveState(id, res.newState);
      core.setInactive(id);
      core.store.deleteKey(profileKeyDueKey(id));
      const text = core.takeLeaving(id, core.userId) ? "you left" : `${committer ?? "someone"} removed you`;
      core.insertMessage(id, "system", committer, text, false);
      return;
    }
    core.saveState(id, res.newState, nextKey);
    core.applyMembership(conv, res.newState, infos, committer);
  });
}

/** Key-value entry: this client's profile key still has to reach the group's DS. */
function profileKeyDueKey(id: string): string {
  return `profile-key-due:${id}`;
}

/**
 * Hands the group our user profile key (encrypted under its profile-key key) so members can read
 * our profile. Done after joining; when the group's EAR key rotated since the Welcome was made,
 * it waits until this client processed the rotating commit ({@link commitPending} retries it). A
 * joiner removed before it came online has nothing to hand over.
 */
export async function uploadProfileKey(core: ClientCore, id: string): Promise<void> {
  const joined = core.row(id);
  if (joined.status !== "active" || joined.state === undefined) {
    core.store.deleteKey(profileKeyDueKey(id));
    return;
  }
  try {
    await core.transport.delivery.updateProfileKey({
      signed: await core.dsSigned(joined, delivery.UpdateProfileKeyTbs, DS.updateProfileKey, {
        groupId: joined.groupId,
        encryptedUserProfileKey: encryptUserProfileKey(
          joined.profileKeyKey,
          core.user,
          core.account.profileKey,
        ),
      }),
      groupStateEarKey: joined.earKey,
    });
  } catch (error) {
    if (earKeyRotated(error)) {
      core.store.setJson(profileKeyDueKey(id), true);
      return;
    }
    if (!leafUnknownToDs(error)) throw error;
  }
  core.store.deleteKey(profileKeyDueKey(id));
}

/** Whether a profile-key upload waits for this conversation (see {@link uploadProfileKey}). */
export function profileKeyDue(core: ClientCore, id: string): boolean {
  return core.store.getJson(profileKeyDueKey(id)) !== undefined;
}

/**
 * What the Welcome's epoch looked like (tree, members): from the bundle, where the DS sealed it
 * under the EAR key the inviter handed us, else from WelcomeInfo.
 */
async function welcomeInfoOf(
  core: ClientCore,
  bundle: common.WelcomeBundle & { groupId: common.QualifiedGroupId },
  epoch: bigint,
  earKey: Uint8Array,
  leafKey: SigningKey,
  keyPackageRef: string,
): Promise<delivery.WelcomeInfoResponse> {
  if (bundle.encryptedWelcomeInfo.length > 0) {
    const mlsId = mlsGroupId(bundle.groupId);
    const aad = new Uint8Array(mlsId.length + 8);
    aad.set(mlsId, 0);
    new DataView(aad.buffer).setBigUint64(mlsId.length, epoch);
    return delivery.WelcomeInfoResponse.decode(
      decryptAtRest(earKey, AeadLabel.WelcomeInfo, bundle.encryptedWelcomeInfo, { aad }),
    );
  }
  return core.transport.delivery.welcomeInfo({
    signed: await signRequest(
      delivery.WelcomeInfoTbs,
      DS.welcomeInfo,
      { groupId: bundle.groupId, epoch },
      leafKey,
      { $case: "keyPackageRef", value: hexBytes(keyPackageRef) },
    ),
    groupStateEarKey: earKey,
  });
}

export async function receiveWelcome(
  core: ClientCore,
  bundle: common.WelcomeBundle,
  pending: Set<string> = new Set(),
): Promise<void> {
  if (bundle.groupId === undefined) throw new Error("Welcome without group id");
  const mlsId = mlsGroupId(bundle.groupId);
  // The inviter (and the members) may be of other domains.
  const attribution = await core.withCredentials(() =>
    openWelcomeAttribution(bundle.encryptedWelcomeAttributionInfo, {
      friendshipEncryptionKey: core.account.friendshipEncryptionKey,
      groupId: mlsId,
      welcome: bundle.welcome,
      verifier: core.verifier,
    }),
  );
  const parsed = parseMlsMessage(bundle.welcome);
  if (parsed.wireformat !== "mls_welcome") throw new Error("not a Welcome");
  const refs = new Set(parsed.welcome.secrets.map((s) => toHex(s.newMember)));
  const row = core.store.db
    .select()
    .from(t.addPackageKeys)
    .all()
    .find((r) => refs.has(r.ref));
  if (row === undefined) throw new Error("the Welcome is for none of our AddPackages");
  const kp = decodeKeyPackage(u8(row.keyPackage), 0)?.[0];
  if (kp === undefined) throw new Error("stored KeyPackage is corrupt");
  const priv = decodePrivateKeyPackage(u8(row.privateKeyPackage));
  const epoch = await welcomeEpoch(parsed.welcome, kp, priv, core.cs);
  if (epoch === undefined) throw new Error("cannot read the Welcome's epoch");
  const leafKey = SigningKey.fromSeed(u8(row.leafSeed));
  const keys = attribution.groupKeys;
  const info = await welcomeInfoOf(
    core,
    { ...bundle, groupId: bundle.groupId },
    epoch,
    keys.groupStateEarKey,
    leafKey,
    row.ref,
  );
  const tree = decodeRatchetTree(info.ratchetTree, 0)?.[0];
  const state = await joinFromWelcome(bundle.welcome, kp, priv, core.cs, tree);
  const id = toHex(mlsId);
  const inviter = formatUserId(attribution.sender.userId);
  await core.withCredentials(() =>
    core.store.transaction(() => {
      core.store.db.delete(t.conversations).where(eq(t.conversations.id, id)).run();
      core.store.db.delete(t.members).where(eq(t.members.conversationId, id)).run();
      core.store.db.delete(t.formerMembers).where(eq(t.formerMembers.conversationId, id)).run();
      core.insertConversation({
        id,
        groupId: bundle.groupId as common.QualifiedGroupId,
        kind: "group",
        title: `group of ${inviter}`,
        earKey: keys.groupStateEarKey,
        credentialKey: keys.credentialEncryptionKey,
        profileKeyKey: keys.userProfileKeyEncryptionKey,
        state,
        leaf: {
          leafKey,
          leafCredential: u8(row.leafCredential),
          signatureEncryptionKey: u8(row.signatureEncryptionKey),
        },
        peerUserId: null,
      });
      core.recordMembers(id, state, info.members, keys.credentialEncryptionKey);
      const mine = state.privatePath.leafIndex;
      core.store.db
        .insert(t.members)
        .values({ conversationId: id, leafIndex: mine, userId: core.userId })
        .onConflictDoUpdate({
          target: [t.members.conversationId, t.members.leafIndex],
          set: { userId: core.userId },
        })
        .run();
      core.insertMessage(id, "system", inviter, `${inviter} added ${core.userId}`, false);
      if (!row.lastResort)
        core.store.db.delete(t.addPackageKeys).where(eq(t.addPackageKeys.ref, row.ref)).run();
    }),
  );
  // A joiner removed before it came online is no longer in the group: nothing to hand over, and
  // the commit removing it follows in the queue.
  await uploadProfileKey(core, id);
  if (profileKeyDue(core, id)) pending.add(id);
  const left = core.store.db
    .select()
    .from(t.addPackageKeys)
    .all()
    .filter((r) => !r.lastResort).length;
  if (left === 0) await publishAddPackages(core);
}
