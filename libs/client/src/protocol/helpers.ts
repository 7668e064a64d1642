// Small protocol helpers the client needs without importing any service: id encodings both sides
// agree on, signing of `…Tbs` requests, the Welcome's epoch, application message contents.
import type { SigningKey, UserId } from "@phoenix/crypto";
import { type common, type MessageEncoder, requestHeader, rpcLabel, signTbs } from "@phoenix/proto";
import type { CiphersuiteImpl, ClientState, KeyPackage, PrivateKeyPackage, Welcome } from "ts-mls";
import { makeKeyPackageRef } from "ts-mls/keyPackage.js";
import type { PrivateMessage } from "ts-mls/privateMessage.js";
import { decryptSenderData } from "ts-mls/privateMessage.js";
import { decryptGroupInfo, decryptGroupSecrets } from "ts-mls/welcome.js";

// The id encodings the DS and AS share with the client are defined once, in @phoenix/wire.
export { connectionQueueContext, mlsGroupId, qualifiedGroupId } from "@phoenix/wire";

const HOUR = 3_600_000;

/**
 * The start of a validity period the client asks for (client credential CSR, connection
 * packages): `now` rounded down to the hour. The AS stores these objects; an exact start would
 * be the moment of registration, which joined with the QS's records links the user id to its QS
 * pseudonym (the AS accepts a CSR starting up to two hours back).
 */
export function validityStart(now: number): number {
  return Math.floor(now / HOUR) * HOUR;
}

/** Signs a `…Tbs` for `method` with `key` as `sender`. */
export function signRequest<T extends { header: common.RequestHeader | undefined }>(
  type: MessageEncoder<T>,
  method: { path: string },
  body: Omit<T, "header">,
  key: SigningKey,
  sender: common.RequestHeader["sender"],
): Promise<common.Signed> {
  const tbs = { ...body, header: requestHeader(rpcLabel(method), sender) } as T;
  return signTbs(type, tbs, (label, bytes) => key.sign(label, bytes));
}

/** The protobuf form of a user id. */
export function wireUserId(id: UserId): common.UserId {
  return { uuid: id.uuid, domain: id.domain };
}

/**
 * The epoch a Welcome puts its joiner in, read from the Welcome's encrypted GroupInfo. The joiner
 * needs it for WelcomeInfo (the DS keeps the tree per epoch) before it can build its group state.
 * Phoenix uses no PSKs, so the PSK secret is the zero vector.
 */
export async function welcomeEpoch(
  welcome: Welcome,
  keyPackage: KeyPackage,
  privateKeyPackage: PrivateKeyPackage,
  cs: CiphersuiteImpl,
): Promise<bigint | undefined> {
  const ref = await makeKeyPackageRef(keyPackage, cs.hash);
  const key = await cs.hpke.importPrivateKey(privateKeyPackage.initPrivateKey);
  const secrets = await decryptGroupSecrets(key, ref, welcome, cs.hpke);
  if (secrets === undefined || secrets.psks.length > 0) return undefined;
  const info = await decryptGroupInfo(welcome, secrets.joinerSecret, new Uint8Array(cs.kdf.size), cs);
  return info?.groupContext.epoch;
}

/**
 * The leaf that sent a PrivateMessage, from its encrypted sender data, with that leaf's credential
 * (MLS Basic identity) in the message's epoch. ts-mls verifies the content's signature with that
 * leaf's key when it processes the message, so the sender is authenticated; ts-mls just does not
 * return it. A message of an earlier epoch (sent before a commit this client has already applied)
 * is read with that epoch's retained sender-data secret and tree — the leaf may be blank or
 * another member's by now. Undefined when no keys of the epoch are left.
 */
export async function privateMessageSender(
  state: ClientState,
  message: PrivateMessage,
  cs: CiphersuiteImpl,
): Promise<{ leafIndex: number; leafCredential: Uint8Array } | undefined> {
  const epoch =
    message.epoch === state.groupContext.epoch
      ? { senderDataSecret: state.keySchedule.senderDataSecret, ratchetTree: state.ratchetTree }
      : state.historicalReceiverData.get(message.epoch);
  if (epoch === undefined) return undefined;
  const data = await decryptSenderData(message, epoch.senderDataSecret, cs).catch(() => undefined);
  if (data === undefined) return undefined;
  const node = epoch.ratchetTree[data.leafIndex * 2];
  if (node?.nodeType !== "leaf" || node.leaf.credential.credentialType !== "basic") return undefined;
  return { leafIndex: data.leafIndex, leafCredential: node.leaf.credential.identity };
}

/** What travels inside an MLS application message (JSON, UTF-8). */
export type AppContent =
  /** A chat message. */
  | { type: "text"; body: string }
  /** The responder's friendship package, sent right after it joined a connection group. */
  | { type: "friendship"; friendshipPackage: string }
  /**
   * The group's title, sent by the inviter after adding members (MLS carries no title), with
   * the added users' profile keys (base64, by user id) from their friendship packages.
   */
  | { type: "title"; title: string; profileKeys?: Record<string, string> }
  /**
   * The sender's profile changed, or its profile key reached the group's DS (after joining):
   * members read its key from the DS and its profile from the AS again.
   */
  | { type: "profile" }
  /** The responder declined the connection (sent by a responder that never joins the group). */
  | { type: "rejected" };

export function encodeAppContent(c: AppContent): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(c));
}

/** Decodes {@link encodeAppContent}'s output; undefined for anything else. */
export function decodeAppContent(bytes: Uint8Array): AppContent | undefined {
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes)) as Partial<AppContent>;
    if (v.type === "text" && typeof v.body === "string") return { type: "text", body: v.body };
    if (v.type === "friendship" && typeof v.friendshipPackage === "string")
      return { type: "friendship", friendshipPackage: v.friendshipPackage };
    if (v.type === "title" && typeof v.title === "string") {
      const keys = v.profileKeys;
      const profileKeys: Record<string, string> = {};
      if (typeof keys === "object" && keys !== null)
        for (const [userId, key] of Object.entries(keys))
          if (typeof key === "string") profileKeys[userId] = key;
      return { type: "title", title: v.title, profileKeys };
    }
    if (v.type === "profile") return { type: "profile" };
  } catch {
    // not ours
  }
  return undefined;
}

export function toB64(b: Uint8Array): string {
  return Buffer.from(b).toString("base64");
}

export function fromB64(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, "base64"));
}
