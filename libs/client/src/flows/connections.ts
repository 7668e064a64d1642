// Connection flows: connect by user id or handle (connection group + offer into the responder's
// AS queue), handles, and the responder's side (verify the offer, join by external commit).
import { createHmac } from "node:crypto";
import {
  bytesEqual,
  createHandleConnectionPackage,
  encodeFriendshipPackage,
  encryptUserProfileKey,
  expirationFrom,
  formatUserId,
  HpkeKeyPair,
  handleHash,
  openConnectionOffer,
  parseUserId,
  SigningKey,
  sealClientInfo,
  sealConnectionOffer,
  toHex,
  verifyConnectionPackage,
} from "@phoenix/crypto";
import { joinExternally } from "@phoenix/mls";
import { auth, delivery } from "@phoenix/proto";
import { GrpcCallError } from "@phoenix/wire";
import { and, eq } from "drizzle-orm";
import { decodeRatchetTree } from "ts-mls/ratchetTree.js";
import { AS, CONNECTION_PACKAGES, DAY, DS, NOT_FOUND, PERMISSION_DENIED } from "../constants.js";
import type { ClientCore } from "../core/client-core.js";
import { FederationRefusedError, UnknownRequestError, UnknownUserError } from "../errors.js";
import { hexBytes } from "../protocol/codecs.js";
import { readHandleConnectionPackage } from "../protocol/handle-package.js";
import {
  mlsGroupId,
  qualifiedGroupId,
  signRequest,
  toB64,
  validityStart,
  wireUserId,
} from "../protocol/helpers.js";
import { buf, u8 } from "../store/client-store.js";
import { decodeStoredOffer, encodeStoredOffer } from "../store/codecs.js";
import * as t from "../store/schema.js";
import { createGroup, sendApp } from "./group-primitives.js";

/**
 * Asks `userId` to connect: creates a connection group and sends a signed, encrypted connection
 * offer into the connection queue of each of the user's clients. Throws UnknownUserError when the
 * user does not exist.
 */
export async function connect(core: ClientCore, userId: string): Promise<void> {
  const target = parseUserId(userId);
  let packages: auth.ClientConnectionPackage[];
  try {
    packages = (await core.transport.auth.getConnectionPackages({ userId: wireUserId(target) })).packages;
  } catch (error) {
    if (error instanceof GrpcCallError && error.code === NOT_FOUND)
      throw new UnknownUserError(`no user ${userId} on ${target.domain}`);
    throw federationRefusal(error, core.account.domain, target.domain);
  }
  if (packages.length === 0) throw new UnknownUserError(`${userId} publishes no connection package`);
  // The packages' credentials chain to the AS of the user's domain.
  const verified = await core.trust.withCredentials(() =>
    packages.map((p) => {
      const pkg = verifyConnectionPackage(p.connectionPackage, { verifier: core.trust.verifier });
      if (pkg.clientCredential === undefined || formatUserId(pkg.clientCredential.clientId.userId) !== userId)
        throw new Error(`a connection package for ${userId} belongs to someone else`);
      return { clientId: p.clientId, pkg };
    }),
  );
  const c = await createGroup(core, "connection", userId, userId);
  for (const { clientId, pkg } of verified) {
    const offer = sealConnectionOffer(
      {
        senderCredential: core.identity.credential,
        connectionGroupId: mlsGroupId(c.groupId),
        groupEarKey: c.earKey,
        credentialEncryptionKey: c.credentialKey,
        friendshipPackage: core.identity.friendshipPackage,
      },
      core.identity.clientKey,
      pkg,
    );
    await core.transport.auth.enqueueConnectionOffer({ clientId, connectionOffer: offer });
  }
  core.store.db
    .insert(t.connectionRequests)
    .values({
      direction: "outgoing",
      userId,
      conversationId: c.id,
      status: "pending",
      createdAt: Date.now(),
    })
    .run();
}

/**
 * Accepts an incoming connection request: joins the initiator's connection group by external
 * commit and sends this user's friendship keys into it. Both sides then have a contact.
 */
export async function acceptConnection(core: ClientCore, requestId: number): Promise<string> {
  const req = core.store.db
    .select()
    .from(t.connectionRequests)
    .where(eq(t.connectionRequests.id, requestId))
    .get();
  if (req === undefined || req.direction !== "incoming" || req.status !== "pending" || req.offer === null)
    throw new UnknownRequestError(`no pending incoming connection request ${requestId}`);
  const offer = decodeStoredOffer(u8(req.offer));
  const groupId = qualifiedGroupId(offer.groupId);
  const info = await core.transport.delivery.connectionGroupInfo({
    groupId,
    groupStateEarKey: offer.earKey,
  });
  const leaf = await core.identity.newLeaf();
  const aad = delivery.CommitAad.encode({
    addedClientInfos: [],
    senderClientInfo: sealClientInfo(
      offer.credentialKey,
      "group",
      leaf.leaf.bytes,
      core.identity.credential,
      leaf.signatureEncryptionKey,
    ),
  }).finish();
  const tree = decodeRatchetTree(info.ratchetTree, 0)?.[0];
  const out = await joinExternally(info.groupInfo, leaf.keyPackage, leaf.privateKeyPackage, core.cs, tree, {
    aad,
  });
  const myLeaf = out.newState.privatePath.leafIndex;
  await core.transport.delivery.joinConnectionGroup({
    signed: await signRequest(
      delivery.JoinConnectionGroupTbs,
      DS.joinConnectionGroup,
      {
        groupId,
        externalCommit: out.commit,
        groupInfo: out.groupInfo,
        joinerQueue: core.identity.qsReference(),
        // Connection groups have no separate profile-key key: the credential key protects it.
        encryptedUserProfileKey: encryptUserProfileKey(
          offer.credentialKey,
          core.identity.user,
          core.account.profileKey,
        ),
      },
      leaf.leafKey,
      { $case: "leafIndex", value: myLeaf },
    ),
    groupStateEarKey: offer.earKey,
  });
  const id = toHex(offer.groupId);
  const peer = formatUserId(offer.senderCredential.clientId.userId);
  // Members' credentials may be of other domains: the transaction is retried once they are known.
  await core.trust.withCredentials(() =>
    core.store.transaction(() => {
      core.conversations.insert({
        id,
        groupId,
        kind: "connection",
        title: peer,
        earKey: offer.earKey,
        credentialKey: offer.credentialKey,
        profileKeyKey: offer.credentialKey,
        state: out.newState,
        leaf,
        peerUserId: peer,
      });
      core.members.add(id, myLeaf, core.identity.userId);
      core.members.recordMembers(id, out.newState, info.members, offer.credentialKey);
      core.contacts.upsert(peer, offer.friendshipPackage, id);
      core.store.db
        .update(t.connectionRequests)
        .set({ status: "accepted" })
        .where(eq(t.connectionRequests.id, requestId))
        .run();
    }),
  );
  const c = core.conversations.row(id);
  await sendApp(core, c, {
    type: "friendship",
    friendshipPackage: toB64(encodeFriendshipPackage(core.identity.friendshipPackage)),
  });
  await core.contacts.refreshProfile(peer);
  return id;
}

/**
 * Claims a handle on the AS (only its hash is stored there) with its own signing key and
 * connection queue, and publishes connection packages under it. Others can then connect by
 * handle without learning the user id.
 */
export async function createHandle(core: ClientCore, handle: string): Promise<void> {
  const handleKey = SigningKey.generate();
  const queueKey = HpkeKeyPair.generate();
  const hash = handleHash(handle);
  await core.transport.auth.createHandle({
    signed: await signRequest(
      auth.CreateHandleTbs,
      AS.createHandle,
      {
        handle,
        handleHash: hash,
        verifyingKey: handleKey.publicKey,
        connectionQueueEncryptionKey: queueKey.publicKey.bytes,
      },
      handleKey,
      { $case: "handleHash", value: hash },
    ),
  });
  const lifetime = expirationFrom(validityStart(Date.now()), 30 * DAY);
  const packages: auth.PublishedConnectionPackage[] = [];
  for (let i = 0; i <= CONNECTION_PACKAGES; i++) {
    const { bytes, decryptionKey } = createHandleConnectionPackage({ handleKey, lifetime });
    const pkgHash = readHandleConnectionPackage(bytes).hash;
    core.store.db
      .insert(t.connectionPackageKeys)
      .values({ hash: toHex(pkgHash), decryptionKey: buf(decryptionKey.privateBytes) })
      .run();
    packages.push({ connectionPackage: bytes, lastResort: i === CONNECTION_PACKAGES });
  }
  await core.transport.auth.publishHandleConnectionPackages({
    signed: await signRequest(
      auth.PublishHandleConnectionPackagesTbs,
      AS.publishHandleConnectionPackages,
      { packages },
      handleKey,
      { $case: "handleHash", value: hash },
    ),
  });
  core.queues.storeHandle({
    handle,
    keySeed: toHex(handleKey.exportSeed()),
    queueKey: toHex(queueKey.privateBytes),
  });
}

/**
 * Asks the owner of `handle` to connect (like {@link connect}, through the handle's connection
 * queue). Throws UnknownUserError when no such handle exists.
 */
export async function connectByHandle(core: ClientCore, handle: string, domain = ""): Promise<void> {
  const hash = handleHash(handle);
  let bytes: Uint8Array;
  try {
    bytes = (await core.transport.auth.getHandleConnectionPackage({ handleHash: hash, domain }))
      .connectionPackage;
  } catch (error) {
    if (error instanceof GrpcCallError && error.code === NOT_FOUND)
      throw new UnknownUserError(`no handle ${handle}${domain ? ` on ${domain}` : ""}`);
    throw federationRefusal(error, core.account.domain, domain || core.account.domain);
  }
  const pkg = readHandleConnectionPackage(bytes);
  const c = await createGroup(core, "connection", handle, null);
  const offer = sealConnectionOffer(
    {
      senderCredential: core.identity.credential,
      connectionGroupId: mlsGroupId(c.groupId),
      groupEarKey: c.earKey,
      credentialEncryptionKey: c.credentialKey,
      friendshipPackage: core.identity.friendshipPackage,
    },
    core.identity.clientKey,
    pkg,
  );
  await core.transport.auth.enqueueHandleConnectionOffer({
    handleHash: hash,
    domain,
    connectionOffer: offer,
  });
  core.store.db
    .insert(t.connectionRequests)
    .values({
      direction: "outgoing",
      userId: handle,
      conversationId: c.id,
      status: "pending",
      createdAt: Date.now(),
    })
    .run();
}

/**
 * Records an incoming connection offer as a pending request (once per connection group). The
 * sender's credential may be of another domain: its AS credentials are fetched when missing.
 */
export async function receiveOffer(core: ClientCore, sealed: Uint8Array): Promise<void> {
  const rejection = readRejection(sealed);
  if (rejection !== undefined) return receiveRejection(core, rejection);
  const from = await core.trust.withCredentials(() => receiveOfferOnce(core, sealed));
  // The offer carries the requester's profile key (in its friendship package): its name is
  // shown with the request. Best effort: the request stands without it.
  if (from !== undefined) await core.profiles.refresh(from).catch(() => undefined);
}

/** Records the offer; the requester's user id when it is new. */
function receiveOfferOnce(core: ClientCore, sealed: Uint8Array): string | undefined {
  for (const row of core.store.db.select().from(t.connectionPackageKeys).all()) {
    let offer: ReturnType<typeof openConnectionOffer>;
    try {
      offer = openConnectionOffer(sealed, {
        decryptionKey: HpkeKeyPair.fromPrivateBytes(u8(row.decryptionKey)),
        packageHash: hexBytes(row.hash),
        verifier: core.trust.verifier,
      });
    } catch (error) {
      // Opened under this package, but the sender's domain credentials are missing: fetch, retry.
      if (core.trust.verifier.missing !== undefined) throw error;
      continue;
    }
    const from = formatUserId(offer.senderCredential.clientId.userId);
    const id = toHex(offer.connectionGroupId);
    const known = core.store.db
      .select()
      .from(t.connectionRequests)
      .where(eq(t.connectionRequests.conversationId, id))
      .get();
    if (known !== undefined) return undefined;
    core.profiles.rememberKey(from, offer.friendshipPackage.userProfileKey);
    core.store.db
      .insert(t.connectionRequests)
      .values({
        direction: "incoming",
        userId: from,
        conversationId: id,
        offer: buf(
          encodeStoredOffer({
            senderCredential: offer.senderCredential,
            groupId: offer.connectionGroupId,
            earKey: offer.groupEarKey,
            credentialKey: offer.credentialEncryptionKey,
            friendshipPackage: offer.friendshipPackage,
          }),
        ),
        status: "pending",
        createdAt: Date.now(),
      })
      .run();
    return from;
  }
  throw new Error("the offer opens under none of our connection packages");
}

/**
 * Declines an incoming connection request and tells the requester. The responder is no member
 * of the connection group, and joining it only to say no would hand the requester its
 * credential (for a request by handle: who is behind the handle) and leave a group at the DS.
 * The one channel an unconnected user may write into is the requester's AS connection queue
 * (public, rate-limited, encrypted at rest with the queue ratchet), so the rejection goes there:
 * the connection group's id and a MAC under the group's credential key, which only the requester
 * and the recipient of its offer know. The AS learns nothing beyond "a message was queued".
 */
export async function rejectConnection(core: ClientCore, requestId: number): Promise<void> {
  const req = core.store.db
    .select()
    .from(t.connectionRequests)
    .where(eq(t.connectionRequests.id, requestId))
    .get();
  if (req === undefined || req.direction !== "incoming" || req.status !== "pending" || req.offer === null)
    throw new UnknownRequestError(`no pending incoming connection request ${requestId}`);
  const offer = decodeStoredOffer(u8(req.offer));
  const sender = offer.senderCredential.clientId;
  await core.transport.auth.enqueueConnectionOffer({
    clientId: { user: wireUserId(sender.userId), clientUuid: sender.clientUuid },
    connectionOffer: encodeRejection(offer.groupId, offer.credentialKey),
  });
  core.store.db
    .update(t.connectionRequests)
    .set({ status: "rejected" })
    .where(eq(t.connectionRequests.id, requestId))
    .run();
}

/** Marks the outgoing request of a rejection's connection group rejected, if the MAC holds. */
function receiveRejection(core: ClientCore, r: { groupId: Uint8Array; mac: Uint8Array }): void {
  const id = toHex(r.groupId);
  const req = core.store.db
    .select()
    .from(t.connectionRequests)
    .where(and(eq(t.connectionRequests.conversationId, id), eq(t.connectionRequests.direction, "outgoing")))
    .get();
  if (req === undefined || req.status !== "pending") return;
  const c = core.conversations.row(id);
  if (!bytesEqual(rejectionMac(r.groupId, c.credentialKey), r.mac))
    throw new Error("a connection rejection that does not authenticate");
  core.store.db
    .update(t.connectionRequests)
    .set({ status: "rejected" })
    .where(eq(t.connectionRequests.id, req.id))
    .run();
}

/** Prefix of a connection rejection in a connection queue (sealed offers never start with it). */
const REJECTION_MAGIC = new TextEncoder().encode("phoenix-connection-rejection-v1");

function rejectionMac(groupId: Uint8Array, credentialKey: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac("sha256", credentialKey).update(REJECTION_MAGIC).update(groupId).digest());
}

/** magic ‖ u16 group-id length ‖ group id ‖ 32-byte MAC. */
function encodeRejection(groupId: Uint8Array, credentialKey: Uint8Array): Uint8Array {
  const out = new Uint8Array(REJECTION_MAGIC.length + 2 + groupId.length + 32);
  out.set(REJECTION_MAGIC, 0);
  new DataView(out.buffer).setUint16(REJECTION_MAGIC.length, groupId.length);
  out.set(groupId, REJECTION_MAGIC.length + 2);
  out.set(rejectionMac(groupId, credentialKey), REJECTION_MAGIC.length + 2 + groupId.length);
  return out;
}

function readRejection(bytes: Uint8Array): { groupId: Uint8Array; mac: Uint8Array } | undefined {
  const m = REJECTION_MAGIC.length;
  if (bytes.length < m + 2 + 32 || !bytesEqual(bytes.subarray(0, m), REJECTION_MAGIC)) return undefined;
  const n = new DataView(bytes.buffer, bytes.byteOffset).getUint16(m);
  if (bytes.length !== m + 2 + n + 32) return undefined;
  return { groupId: bytes.slice(m + 2, m + 2 + n), mac: bytes.slice(m + 2 + n) };
}

/**
 * A refusal by the federation policy (this homeserver's or the other domain's) as a
 * FederationRefusedError; any other error unchanged.
 */
export function federationRefusal(error: unknown, own: string, other: string): unknown {
  if (!(error instanceof GrpcCallError) || error.code !== PERMISSION_DENIED || other === own) return error;
  return new FederationRefusedError(`${own} and ${other} do not federate: ${error.statusMessage}`, {
    cause: error,
  });
}
