import { aeadOpen, aeadSeal } from "../aead.js";
import { bytesEqual } from "../bytes.js";
import { decodeAll, encodeWith } from "../codec.js";
import { ClientCredential } from "../credentials/client-credential.js";
import { type ClientId, readClientId, writeClientId } from "../credentials/ids.js";
import type { CredentialVerifier } from "../credentials/verifier.js";
import { FingerprintMismatchError, InvalidInputError } from "../errors.js";
import { sha256 } from "../hash.js";
import { AeadLabel, SignatureLabel } from "../labels.js";
import { SIGNATURE_LENGTH, type SigningKey } from "../signature.js";

/**
 * Welcome attribution info: tells the joiner of a group who invited it, without telling the DS
 * or QS, and hands it the group's keys that MLS does not carry (EAR key for DS requests,
 * credential encryption key to read the members' client infos, user profile key encryption key).
 * Payload: inviter's client id ‖ group id ‖ SHA-256 of the Welcome ‖ group keys ‖ timestamp, signed by
 * the inviter's client credential (label "WelcomeAttributionInfo"); the payload, signature and
 * credential are encrypted under the joiner's friendship encryption key (which only friends hold),
 * with the group id as AAD.
 */

const VERSION = 1;

/** The group secrets a joiner receives with the Welcome (each a 32-byte AEAD key). */
export interface GroupKeys {
  /** The group state EAR key, sent with every DS request. */
  groupStateEarKey: Uint8Array;
  /** Encrypts the members' client infos (client credential + signature encryption key). */
  credentialEncryptionKey: Uint8Array;
  /** Encrypts the members' user profile keys. */
  userProfileKeyEncryptionKey: Uint8Array;
}

/** The verified attribution. */
export interface WelcomeAttribution {
  sender: ClientId;
  senderCredential: ClientCredential;
  groupId: Uint8Array;
  groupKeys: GroupKeys;
  timestamp: number;
}

/** Inviter side: signs and encrypts the attribution for one joiner. */
export function sealWelcomeAttribution(options: {
  senderKey: SigningKey;
  senderCredential: ClientCredential;
  groupId: Uint8Array;
  welcome: Uint8Array;
  groupKeys: GroupKeys;
  friendshipEncryptionKey: Uint8Array;
  now?: number;
}): Uint8Array {
  const { senderKey, senderCredential, groupId } = options;
  if (!senderKey.verifyingKey.equals(senderCredential.verifyingKey)) {
    throw new InvalidInputError("sender key does not match the sender credential");
  }
  const tbs = encodeWith((w) => {
    w.u8(VERSION);
    writeClientId(w, senderCredential.clientId);
    w.vec(groupId, 1, "groupId", { min: 1 })
      .fixed(sha256(options.welcome), 32, "welcomeHash")
      .fixed(options.groupKeys.groupStateEarKey, 32, "groupStateEarKey")
      .fixed(options.groupKeys.credentialEncryptionKey, 32, "credentialEncryptionKey")
      .fixed(options.groupKeys.userProfileKeyEncryptionKey, 32, "userProfileKeyEncryptionKey")
      .u64(options.now ?? Date.now());
  });
  const signature = senderKey.sign(SignatureLabel.WelcomeAttributionInfo, tbs);
  const plaintext = encodeWith((w) =>
    w
      .vec(tbs, 2, "tbs")
      .fixed(signature, SIGNATURE_LENGTH)
      .vec(senderCredential.bytes, 2, "senderCredential"),
  );
  return aeadSeal(options.friendshipEncryptionKey, AeadLabel.WelcomeAttributionInfo, plaintext, groupId);
}

/**
 * Joiner side: decrypts with its own friendship encryption key, verifies the inviter's credential
 * chain and signature, and that the info belongs to this group and this Welcome.
 */
export function openWelcomeAttribution(
  sealed: Uint8Array,
  options: {
    friendshipEncryptionKey: Uint8Array;
    groupId: Uint8Array;
    welcome: Uint8Array;
    verifier: CredentialVerifier;
    now?: number;
  },
): WelcomeAttribution {
  const plaintext = aeadOpen(
    options.friendshipEncryptionKey,
    AeadLabel.WelcomeAttributionInfo,
    sealed,
    options.groupId,
  );
  const { tbs, signature, credential } = decodeAll(plaintext, "WelcomeAttributionInfo", (r) => ({
    tbs: r.vec("tbs", 2),
    signature: r.fixed("signature", SIGNATURE_LENGTH),
    credential: r.vec("senderCredential", 2),
  }));
  const senderCredential = options.verifier.verifyClientCredential(
    ClientCredential.decode(credential),
    options.now,
  );
  senderCredential.verifyingKey.verifyOrThrow(
    SignatureLabel.WelcomeAttributionInfo,
    tbs,
    signature,
    "welcome attribution",
  );
  const p = decodeAll(tbs, "WelcomeAttributionInfo.tbs", (r) => {
    r.version([VERSION]);
    return {
      sender: readClientId(r),
      groupId: r.vec("groupId", 1, { min: 1 }),
      welcomeHash: r.fixed("welcomeHash", 32),
      groupKeys: {
        groupStateEarKey: r.fixed("groupStateEarKey", 32),
        credentialEncryptionKey: r.fixed("credentialEncryptionKey", 32),
        userProfileKeyEncryptionKey: r.fixed("userProfileKeyEncryptionKey", 32),
      },
      timestamp: r.u64("timestamp"),
    };
  });
  const idBytes = (id: ClientId) => encodeWith((w) => writeClientId(w, id));
  if (!bytesEqual(idBytes(p.sender), idBytes(senderCredential.clientId))) {
    throw new FingerprintMismatchError("welcome attribution names another client than its credential");
  }
  if (!bytesEqual(p.groupId, options.groupId) || !bytesEqual(p.welcomeHash, sha256(options.welcome))) {
    throw new InvalidInputError("welcome attribution belongs to another group or Welcome");
  }
  return {
    sender: p.sender,
    senderCredential,
    groupId: p.groupId,
    groupKeys: p.groupKeys,
    timestamp: p.timestamp,
  };
}
