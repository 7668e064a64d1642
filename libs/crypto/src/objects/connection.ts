import { bytesEqual } from "../bytes.js";
import { decodeAll, encodeWith } from "../codec.js";
import { ClientCredential } from "../credentials/client-credential.js";
import { checkValidAt, type Expiration, readExpiration, writeExpiration } from "../credentials/expiration.js";
import type { CredentialVerifier } from "../credentials/verifier.js";
import { FutureTimestampError, InvalidInputError, StaleTimestampError } from "../errors.js";
import { fingerprint } from "../hash.js";
import { HPKE_KEY_LENGTH, HpkeKeyPair, HpkePublicKey, hpkeOpen, hpkeSeal } from "../hpke.js";
import { HpkeLabel, KdfLabel, SignatureLabel } from "../labels.js";
import { SIGNATURE_LENGTH, type SigningKey, type VerifyingKey } from "../signature.js";
import { decodeFriendshipPackage, encodeFriendshipPackage, type FriendshipPackage } from "./friendship.js";

/**
 * Connection packages and connection offers (connection establishment).
 *
 * A connection package is published on the AS: an HPKE connection encryption key with a lifetime,
 * signed either by the client credential (packages under the user id, which carry that credential)
 * or by the handle's key (packages under a handle carry no credential, so the handle is not linked
 * to the user id). Encoding: version ‖ kind ‖ encryptionKey ‖ expiration ‖ vec16(clientCredential)
 * ‖ signature, label "ConnectionPackage" or "HandleConnectionPackage".
 *
 * A connection offer is what the initiator sends into the responder's connection queue: its
 * client credential, the connection group's id, EAR key and credential key and its friendship
 * package, signed by its client key (label "ConnectionOffer", with a timestamp and the hash of the
 * package it answers), then HPKE-sealed to the package's encryption key. Only the responder can
 * read it; the AS relaying it learns nothing.
 */

const VERSION = 1;
const PackageKind = { UserId: 0, Handle: 1 } as const;
const MAX_CREDENTIAL = 2048;

/** A verified connection package. */
export interface ConnectionPackage {
  bytes: Uint8Array;
  /** Hash of `bytes`; the offer is bound to it. */
  hash: Uint8Array;
  encryptionKey: HpkePublicKey;
  lifetime: Expiration;
  /** Present for user-id packages, absent for handle packages. */
  clientCredential?: ClientCredential;
}

function packageTbs(kind: number, key: Uint8Array, lifetime: Expiration, credential: Uint8Array): Uint8Array {
  return encodeWith((w) => {
    w.u8(VERSION).u8(kind).fixed(key, HPKE_KEY_LENGTH, "encryptionKey");
    writeExpiration(w, lifetime);
    w.vec(credential, 2, "clientCredential", { max: MAX_CREDENTIAL });
  });
}

/** Creates a user-id connection package signed by the client credential's key; keep `decryptionKey`. */
export function createConnectionPackage(options: {
  clientKey: SigningKey;
  clientCredential: ClientCredential;
  lifetime: Expiration;
}): { bytes: Uint8Array; decryptionKey: HpkeKeyPair } {
  if (!options.clientKey.verifyingKey.equals(options.clientCredential.verifyingKey)) {
    throw new InvalidInputError("client key does not match the client credential");
  }
  const decryptionKey = HpkeKeyPair.generate();
  const tbs = packageTbs(
    PackageKind.UserId,
    decryptionKey.publicKey.bytes,
    options.lifetime,
    options.clientCredential.bytes,
  );
  const signature = options.clientKey.sign(SignatureLabel.ConnectionPackage, tbs);
  return {
    bytes: encodeWith((w) => w.fixed(tbs, tbs.length).fixed(signature, SIGNATURE_LENGTH)),
    decryptionKey,
  };
}

/** Creates a handle connection package (no client credential) signed by the handle's key. */
export function createHandleConnectionPackage(options: { handleKey: SigningKey; lifetime: Expiration }): {
  bytes: Uint8Array;
  decryptionKey: HpkeKeyPair;
} {
  const decryptionKey = HpkeKeyPair.generate();
  const tbs = packageTbs(
    PackageKind.Handle,
    decryptionKey.publicKey.bytes,
    options.lifetime,
    new Uint8Array(0),
  );
  const signature = options.handleKey.sign(SignatureLabel.HandleConnectionPackage, tbs);
  return {
    bytes: encodeWith((w) => w.fixed(tbs, tbs.length).fixed(signature, SIGNATURE_LENGTH)),
    decryptionKey,
  };
}

function parsePackage(bytes: Uint8Array) {
  return decodeAll(bytes, "ConnectionPackage", (r) => {
    r.version([VERSION]);
    const kind = r.u8("kind");
    if (kind !== PackageKind.UserId && kind !== PackageKind.Handle) r.fail("kind", `unknown kind ${kind}`);
    const key = r.fixed("encryptionKey", HPKE_KEY_LENGTH);
    const lifetime = readExpiration(r);
    const credential = r.vec("clientCredential", 2, { max: MAX_CREDENTIAL });
    if ((kind === PackageKind.Handle) !== (credential.length === 0)) {
      r.fail("clientCredential", "must be present exactly for user-id packages");
    }
    const tbs = bytes.slice(0, bytes.length - r.remaining);
    const signature = r.fixed("signature", SIGNATURE_LENGTH);
    return { kind, key, lifetime, credential, tbs, signature };
  });
}

/**
 * Verifies a connection package fetched from the AS. User-id packages: the client credential's
 * chain (via `verifier`) and its signature. Handle packages: the signature by `handleKey`. Both:
 * the lifetime at `now`. Throws the credential errors, BadSignatureError or ExpiredCredentialError.
 */
export function verifyConnectionPackage(
  bytes: Uint8Array,
  options: { verifier?: CredentialVerifier; handleKey?: VerifyingKey; now?: number },
): ConnectionPackage {
  const p = parsePackage(bytes);
  const now = options.now ?? Date.now();
  let clientCredential: ClientCredential | undefined;
  if (p.kind === PackageKind.UserId) {
    if (!options.verifier)
      throw new InvalidInputError("a user-id connection package needs a credential verifier");
    clientCredential = options.verifier.verifyClientCredential(ClientCredential.decode(p.credential), now);
    clientCredential.verifyingKey.verifyOrThrow(
      SignatureLabel.ConnectionPackage,
      p.tbs,
      p.signature,
      "connection package",
    );
  } else {
    if (!options.handleKey) throw new InvalidInputError("a handle connection package needs the handle's key");
    options.handleKey.verifyOrThrow(
      SignatureLabel.HandleConnectionPackage,
      p.tbs,
      p.signature,
      "connection package",
    );
  }
  checkValidAt(p.lifetime, now, "connection package");
  const result: ConnectionPackage = {
    bytes: bytes.slice(),
    hash: fingerprint(KdfLabel.ConnectionPackageHash, bytes),
    encryptionKey: HpkePublicKey.fromBytes(p.key),
    lifetime: p.lifetime,
  };
  if (clientCredential) result.clientCredential = clientCredential;
  return result;
}

/** The content of a connection offer. */
export interface ConnectionOffer {
  senderCredential: ClientCredential;
  connectionGroupId: Uint8Array;
  groupEarKey: Uint8Array;
  credentialEncryptionKey: Uint8Array;
  friendshipPackage: FriendshipPackage;
  /** Signing time (ms). */
  timestamp: number;
}

function offerTbs(o: ConnectionOffer, packageHash: Uint8Array): Uint8Array {
  return encodeWith((w) =>
    w
      .u8(VERSION)
      .vec(o.senderCredential.bytes, 2, "senderCredential", { max: MAX_CREDENTIAL })
      .vec(o.connectionGroupId, 1, "connectionGroupId", { min: 1 })
      .fixed(o.groupEarKey, 32, "groupEarKey")
      .fixed(o.credentialEncryptionKey, 32, "credentialEncryptionKey")
      .vec(encodeFriendshipPackage(o.friendshipPackage), 1, "friendshipPackage")
      .fixed(packageHash, 32, "packageHash")
      .u64(o.timestamp),
  );
}

/** Initiator side: signs the offer and seals it to the responder's connection package. */
export function sealConnectionOffer(
  offer: Omit<ConnectionOffer, "timestamp"> & { timestamp?: number },
  senderKey: SigningKey,
  connectionPackage: ConnectionPackage,
): Uint8Array {
  if (!senderKey.verifyingKey.equals(offer.senderCredential.verifyingKey)) {
    throw new InvalidInputError("sender key does not match the sender credential");
  }
  const full: ConnectionOffer = { ...offer, timestamp: offer.timestamp ?? Date.now() };
  const tbs = offerTbs(full, connectionPackage.hash);
  const signature = senderKey.sign(SignatureLabel.ConnectionOffer, tbs);
  const plaintext = encodeWith((w) => w.vec(tbs, 2, "tbs").fixed(signature, SIGNATURE_LENGTH));
  const sealed = hpkeSeal(connectionPackage.encryptionKey, HpkeLabel.ConnectionOffer, plaintext, {
    infoContext: connectionPackage.hash,
  });
  return encodeWith((w) =>
    w.u8(VERSION).fixed(sealed.enc, HPKE_KEY_LENGTH).vec(sealed.ciphertext, 2, "ciphertext"),
  );
}

/**
 * Responder side: opens an offer with the package's decryption key, verifies the sender's
 * credential chain and signature, that the offer answers this package, and that it is not older
 * than `maxAgeMs` (default 30 days: offers wait in a queue until the responder comes online).
 */
export function openConnectionOffer(
  sealed: Uint8Array,
  options: {
    decryptionKey: HpkeKeyPair;
    packageHash: Uint8Array;
    verifier: CredentialVerifier;
    now?: number;
    maxAgeMs?: number;
  },
): ConnectionOffer {
  const now = options.now ?? Date.now();
  const outer = decodeAll(sealed, "SealedConnectionOffer", (r) => {
    r.version([VERSION]);
    return { enc: r.fixed("enc", HPKE_KEY_LENGTH), ciphertext: r.vec("ciphertext", 2) };
  });
  const plaintext = hpkeOpen(options.decryptionKey, HpkeLabel.ConnectionOffer, outer, {
    infoContext: options.packageHash,
  });
  const { tbs, signature } = decodeAll(plaintext, "ConnectionOffer", (r) => ({
    tbs: r.vec("tbs", 2),
    signature: r.fixed("signature", SIGNATURE_LENGTH),
  }));
  const parsed = decodeAll(tbs, "ConnectionOffer.tbs", (r) => {
    r.version([VERSION]);
    return {
      senderCredential: ClientCredential.decode(r.vec("senderCredential", 2, { max: MAX_CREDENTIAL })),
      connectionGroupId: r.vec("connectionGroupId", 1, { min: 1 }),
      groupEarKey: r.fixed("groupEarKey", 32),
      credentialEncryptionKey: r.fixed("credentialEncryptionKey", 32),
      friendshipPackage: decodeFriendshipPackage(r.vec("friendshipPackage", 1)),
      packageHash: r.fixed("packageHash", 32),
      timestamp: r.u64("timestamp"),
    };
  });
  options.verifier.verifyClientCredential(parsed.senderCredential, now);
  parsed.senderCredential.verifyingKey.verifyOrThrow(
    SignatureLabel.ConnectionOffer,
    tbs,
    signature,
    "connection offer",
  );
  if (!bytesEqual(parsed.packageHash, options.packageHash)) {
    throw new InvalidInputError("connection offer answers another connection package");
  }
  const maxAge = options.maxAgeMs ?? 30 * 86_400_000;
  if (parsed.timestamp < now - maxAge) throw new StaleTimestampError("connection offer is too old");
  if (parsed.timestamp > now + 60_000) throw new FutureTimestampError("connection offer is from the future");
  const { packageHash: _hash, ...offer } = parsed;
  return offer;
}
