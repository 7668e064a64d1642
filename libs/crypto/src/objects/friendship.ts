import { aeadOpen, aeadSeal, generateAeadKey } from "../aead.js";
import { randomBytes } from "../bytes.js";
import { decodeAll, encodeWith } from "../codec.js";
import { ClientCredential } from "../credentials/client-credential.js";
import { fingerprint } from "../hash.js";
import { AeadLabel, KdfLabel } from "../labels.js";

/**
 * Friendship keys, exchanged when two users connect: the friendship token (authorises fetching the
 * owner's AddPackages from the QS), the friendship encryption key (protects what the owner puts in
 * AddPackages and the Welcome attribution info sent to the owner) and the owner's user profile key.
 */
export interface FriendshipPackage {
  friendshipToken: Uint8Array;
  friendshipEncryptionKey: Uint8Array;
  userProfileKey: Uint8Array;
}

const VERSION = 1;

/** Fresh friendship keys (the profile key is the user's current one). */
export function generateFriendshipPackage(userProfileKey: Uint8Array): FriendshipPackage {
  return { friendshipToken: randomBytes(32), friendshipEncryptionKey: generateAeadKey(), userProfileKey };
}

/** Encodes a friendship package: version ‖ token ‖ encryption key ‖ profile key. */
export function encodeFriendshipPackage(p: FriendshipPackage): Uint8Array {
  return encodeWith((w) =>
    w
      .u8(VERSION)
      .fixed(p.friendshipToken, 32, "friendshipToken")
      .fixed(p.friendshipEncryptionKey, 32, "friendshipEncryptionKey")
      .fixed(p.userProfileKey, 32, "userProfileKey"),
  );
}

/** Decodes encodeFriendshipPackage's output. */
export function decodeFriendshipPackage(bytes: Uint8Array): FriendshipPackage {
  return decodeAll(bytes, "FriendshipPackage", (r) => {
    r.version([VERSION]);
    return {
      friendshipToken: r.fixed("friendshipToken", 32),
      friendshipEncryptionKey: r.fixed("friendshipEncryptionKey", 32),
      userProfileKey: r.fixed("userProfileKey", 32),
    };
  });
}

/** The client credential and signature encryption key of one leaf, encrypted for its readers. */
export interface EncryptedLeafSecrets {
  encryptedClientCredential: Uint8Array;
  encryptedSignatureKey: Uint8Array;
}

/** Whom the leaf secrets are encrypted for: a friend (AddPackage) or the group (credential key). */
export type LeafSecretsAudience = "addPackage" | "group";

const AUDIENCE_LABELS = {
  addPackage: {
    credential: AeadLabel.AddPackageClientCredential,
    signatureKey: AeadLabel.AddPackageSignatureKey,
  },
  group: { credential: AeadLabel.GroupClientCredential, signatureKey: AeadLabel.GroupSignatureKey },
} as const;

function leafAad(leafCredential: Uint8Array): Uint8Array {
  // Binds both ciphertexts to one leaf credential, so they cannot be moved to another leaf.
  return fingerprint(KdfLabel.CredentialFingerprint, leafCredential);
}

/**
 * Encrypts a leaf's client credential and signature encryption key under `key`: the friendship
 * encryption key for an AddPackage, the group's credential encryption key when adding to a group.
 */
export function encryptLeafSecrets(
  key: Uint8Array,
  audience: LeafSecretsAudience,
  leafCredential: Uint8Array,
  clientCredential: ClientCredential,
  signatureEncryptionKey: Uint8Array,
): EncryptedLeafSecrets {
  const labels = AUDIENCE_LABELS[audience];
  const aad = leafAad(leafCredential);
  return {
    encryptedClientCredential: aeadSeal(key, labels.credential, clientCredential.bytes, aad),
    encryptedSignatureKey: aeadSeal(key, labels.signatureKey, signatureEncryptionKey, aad),
  };
}

/** Decrypts encryptLeafSecrets' output; throws DecryptionError or DecodeError. */
export function decryptLeafSecrets(
  key: Uint8Array,
  audience: LeafSecretsAudience,
  leafCredential: Uint8Array,
  secrets: EncryptedLeafSecrets,
): { clientCredential: ClientCredential; signatureEncryptionKey: Uint8Array } {
  const labels = AUDIENCE_LABELS[audience];
  const aad = leafAad(leafCredential);
  const clientCredential = ClientCredential.decode(
    aeadOpen(key, labels.credential, secrets.encryptedClientCredential, aad),
  );
  const signatureEncryptionKey = decodeAll(
    aeadOpen(key, labels.signatureKey, secrets.encryptedSignatureKey, aad),
    "SignatureEncryptionKey",
    (r) => r.fixed("key", 32),
  );
  return { clientCredential, signatureEncryptionKey };
}

/**
 * EncryptedClientInfo: encryptLeafSecrets' two ciphertexts as one byte string
 * (version ‖ vec16(client credential ct) ‖ vec16(signature key ct)), the form the protos carry.
 */
export function sealClientInfo(
  key: Uint8Array,
  audience: LeafSecretsAudience,
  leafCredential: Uint8Array,
  clientCredential: ClientCredential,
  signatureEncryptionKey: Uint8Array,
): Uint8Array {
  const s = encryptLeafSecrets(key, audience, leafCredential, clientCredential, signatureEncryptionKey);
  return encodeWith((w) =>
    w
      .u8(VERSION)
      .vec(s.encryptedClientCredential, 2, "encryptedClientCredential")
      .vec(s.encryptedSignatureKey, 2, "encryptedSignatureKey"),
  );
}

/** Opens sealClientInfo's output for the leaf `leafCredential` (its MLS credential identity bytes). */
export function openClientInfo(
  key: Uint8Array,
  audience: LeafSecretsAudience,
  leafCredential: Uint8Array,
  clientInfo: Uint8Array,
): { clientCredential: ClientCredential; signatureEncryptionKey: Uint8Array } {
  const secrets = decodeAll(clientInfo, "EncryptedClientInfo", (r) => {
    r.version([VERSION]);
    return {
      encryptedClientCredential: r.vec("encryptedClientCredential", 2),
      encryptedSignatureKey: r.vec("encryptedSignatureKey", 2),
    };
  });
  return decryptLeafSecrets(key, audience, leafCredential, secrets);
}

/** An AddPackage as published on the QS: an MLS KeyPackage plus its encrypted leaf secrets. */
export interface AddPackage extends EncryptedLeafSecrets {
  /** The RFC 9420 KeyPackage (opaque here), whose leaf carries the leaf credential. */
  keyPackage: Uint8Array;
}

/** Encodes an AddPackage: version ‖ vec32(keyPackage) ‖ vec16(credential ct) ‖ vec16(key ct). */
export function encodeAddPackage(p: AddPackage): Uint8Array {
  return encodeWith((w) =>
    w
      .u8(VERSION)
      .vec(p.keyPackage, 4, "keyPackage", { max: 65536 })
      .vec(p.encryptedClientCredential, 2, "encryptedClientCredential")
      .vec(p.encryptedSignatureKey, 2, "encryptedSignatureKey"),
  );
}

/** Decodes encodeAddPackage's output. */
export function decodeAddPackage(bytes: Uint8Array): AddPackage {
  return decodeAll(bytes, "AddPackage", (r) => {
    r.version([VERSION]);
    return {
      keyPackage: r.vec("keyPackage", 4, { max: 65536 }),
      encryptedClientCredential: r.vec("encryptedClientCredential", 2),
      encryptedSignatureKey: r.vec("encryptedSignatureKey", 2),
    };
  });
}
