import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from "node:crypto";
import { AES_GCM_TAG_LENGTH, aesGcmOpen, aesGcmSeal } from "./aes-gcm.js";
import { asBuffer, concat, utf8 } from "./bytes.js";
import { decodeAll, encodeWith } from "./codec.js";
import { fromB64Url, toB64Url } from "./ed25519.js";
import { DecryptionError, InvalidInputError } from "./errors.js";
import { hkdfExpand, hkdfExtract, keyId, LABEL_PREFIX } from "./hash.js";
import { KeyCache } from "./key-cache.js";
import { KdfLabel } from "./labels.js";

/**
 * HPKE (RFC 9180), base mode, for the suite DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM
 * (MLS ciphersuite 1's primitives), on node:crypto with cached KeyObjects. Peer public keys are
 * imported through JWK (faster than DER here). One core serves both users: the plain RFC 9180
 * single-shot API (`hpkeSealBase`, `hpkeOpenBase`, `hpkeSendExport`, `hpkeReceiveExport`, what
 * the MLS crypto provider calls) and Phoenix's labelled `hpkeSeal` / `hpkeOpen` built on it.
 */

const KEM_ID = 0x0020;
const KDF_ID = 0x0001;
const AEAD_ID = 0x0001;
/** Size of an X25519 public key, private key and `enc`. */
export const HPKE_KEY_LENGTH = 32;
const NK = 16;
const NN = 12;
const NT = AES_GCM_TAG_LENGTH;
const HPKE_V1 = utf8("HPKE-v1");
const KEM_SUITE_ID = concat(utf8("KEM"), u16(KEM_ID));
const HPKE_SUITE_ID = concat(utf8("HPKE"), u16(KEM_ID), u16(KDF_ID), u16(AEAD_ID));
const EMPTY = new Uint8Array(0);
// PKCS#8 header of a raw X25519 private key (RFC 8410).
const X25519_PKCS8_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
]);

function u16(v: number): Uint8Array {
  return Uint8Array.of(v >>> 8, v & 0xff);
}

function labeledExtract(suiteId: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array): Uint8Array {
  return hkdfExtract(salt, concat(HPKE_V1, suiteId, utf8(label), ikm));
}

function labeledExpand(
  suiteId: Uint8Array,
  prk: Uint8Array,
  label: string,
  info: Uint8Array,
  length: number,
) {
  return hkdfExpand(prk, concat(u16(length), HPKE_V1, suiteId, utf8(label), info), length);
}

const publicKeyCache = new KeyCache<HpkePublicKey>(4096);

// Imports a raw X25519 public key without caching (ephemeral `enc` keys are used once).
function importX25519Public(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: "OKP", crv: "X25519", x: toB64Url(raw) }, format: "jwk" });
}

/** An X25519 HPKE public key: raw 32 bytes plus a cached KeyObject. */
export class HpkePublicKey {
  private constructor(
    /** Raw 32-byte public key (the wire form). */
    readonly bytes: Uint8Array,
    /** The imported key object. */
    readonly keyObject: KeyObject,
  ) {}

  /** Imports a raw public key (LRU-cached); throws InvalidInputError on a bad length. */
  static fromBytes(raw: Uint8Array): HpkePublicKey {
    if (!(raw instanceof Uint8Array) || raw.length !== HPKE_KEY_LENGTH) {
      throw new InvalidInputError(`HPKE public key must be ${HPKE_KEY_LENGTH} bytes`);
    }
    return publicKeyCache.getOrCreate(raw, () => {
      let keyObject: KeyObject;
      try {
        keyObject = importX25519Public(raw);
      } catch {
        throw new InvalidInputError("invalid X25519 public key");
      }
      return new HpkePublicKey(raw.slice(), keyObject);
    });
  }

  /** Creates a key from an existing KeyObject (no cache). */
  static fromKeyObject(keyObject: KeyObject): HpkePublicKey {
    const jwk = keyObject.export({ format: "jwk" });
    return new HpkePublicKey(fromB64Url(jwk.x ?? ""), keyObject);
  }
}

/** An X25519 HPKE key pair held as a KeyObject. */
export class HpkeKeyPair {
  private constructor(
    /** Raw 32-byte private key, for storage by its owner. Treat as secret. */
    readonly privateBytes: Uint8Array,
    readonly privateKey: KeyObject,
    readonly publicKey: HpkePublicKey,
  ) {}

  /** A fresh random key pair. */
  static generate(): HpkeKeyPair {
    const { privateKey, publicKey } = generateKeyPairSync("x25519");
    const jwk = privateKey.export({ format: "jwk" });
    return new HpkeKeyPair(fromB64Url(jwk.d ?? ""), privateKey, HpkePublicKey.fromKeyObject(publicKey));
  }

  /** Restores a key pair from its raw 32-byte private key. */
  static fromPrivateBytes(raw: Uint8Array): HpkeKeyPair {
    if (!(raw instanceof Uint8Array) || raw.length !== HPKE_KEY_LENGTH) {
      throw new InvalidInputError(`HPKE private key must be ${HPKE_KEY_LENGTH} bytes`);
    }
    const privateKey = createPrivateKey({
      key: asBuffer(concat(X25519_PKCS8_PREFIX, raw)),
      format: "der",
      type: "pkcs8",
    });
    return new HpkeKeyPair(raw.slice(), privateKey, HpkePublicKey.fromKeyObject(createPublicKey(privateKey)));
  }

  /** DeriveKeyPair(ikm) of RFC 9180 section 7.1.3: deterministic keys from input keying material. */
  static derive(ikm: Uint8Array): HpkeKeyPair {
    const prk = labeledExtract(KEM_SUITE_ID, EMPTY, "dkp_prk", ikm);
    return HpkeKeyPair.fromPrivateBytes(labeledExpand(KEM_SUITE_ID, prk, "sk", EMPTY, HPKE_KEY_LENGTH));
  }
}

function dh(privateKey: KeyObject, publicKey: KeyObject): Uint8Array {
  let secret: Uint8Array;
  try {
    secret = new Uint8Array(diffieHellman({ privateKey, publicKey }));
  } catch {
    throw new DecryptionError("X25519 with a low-order public key");
  }
  // RFC 7748: an all-zero output means a low-order point; refuse it.
  if (secret.every((b) => b === 0)) throw new DecryptionError("X25519 with a low-order public key");
  return secret;
}

function kemSharedSecret(dhOut: Uint8Array, enc: Uint8Array, pkR: Uint8Array): Uint8Array {
  const prk = labeledExtract(KEM_SUITE_ID, EMPTY, "eae_prk", dhOut);
  return labeledExpand(KEM_SUITE_ID, prk, "shared_secret", concat(enc, pkR), 32);
}

/** The key schedule outputs (exposed for RFC 9180 vector tests). */
export interface HpkeSchedule {
  sharedSecret: Uint8Array;
  key: Uint8Array;
  baseNonce: Uint8Array;
  exporterSecret: Uint8Array;
}

function keySchedule(sharedSecret: Uint8Array, info: Uint8Array): HpkeSchedule {
  const pskIdHash = labeledExtract(HPKE_SUITE_ID, EMPTY, "psk_id_hash", EMPTY);
  const infoHash = labeledExtract(HPKE_SUITE_ID, EMPTY, "info_hash", info);
  const context = concat(Uint8Array.of(0), pskIdHash, infoHash);
  const secret = labeledExtract(HPKE_SUITE_ID, sharedSecret, "secret", EMPTY);
  return {
    sharedSecret,
    key: labeledExpand(HPKE_SUITE_ID, secret, "key", context, NK),
    baseNonce: labeledExpand(HPKE_SUITE_ID, secret, "base_nonce", context, NN),
    exporterSecret: labeledExpand(HPKE_SUITE_ID, secret, "exp", context, 32),
  };
}

/** An HPKE encryption context (RFC 9180 section 5.2): sequence-numbered AEAD plus exporter. */
export class HpkeContext {
  private seq = 0;

  constructor(readonly schedule: HpkeSchedule) {}

  private nonce(): Uint8Array {
    const nonce = this.schedule.baseNonce.slice();
    let s = this.seq;
    for (let i = NN - 1; i >= NN - 7 && s > 0; i--) {
      nonce[i] = (nonce[i] as number) ^ (s & 0xff);
      s = Math.floor(s / 256);
    }
    return nonce;
  }

  /** Sets the sequence number (tests and vector checks). */
  setSequence(seq: number): void {
    if (!Number.isSafeInteger(seq) || seq < 0) throw new InvalidInputError("bad HPKE sequence number");
    this.seq = seq;
  }

  /** Seal with the next nonce. */
  seal(aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    const out = aesGcmSeal(this.schedule.key, this.nonce(), aad, plaintext);
    this.seq++;
    return out;
  }

  /** Open with the next nonce; throws DecryptionError. */
  open(aad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    if (ciphertext.length < NT) throw new DecryptionError("HPKE ciphertext shorter than its tag");
    let out: Uint8Array;
    try {
      out = aesGcmOpen(this.schedule.key, this.nonce(), aad, ciphertext);
    } catch {
      throw new DecryptionError("HPKE open failed (wrong key, info, AAD or tampered ciphertext)");
    }
    this.seq++;
    return out;
  }

  /** Secret export (RFC 9180 section 5.3). */
  export(exporterContext: Uint8Array, length: number): Uint8Array {
    return labeledExpand(HPKE_SUITE_ID, this.schedule.exporterSecret, "sec", exporterContext, length);
  }
}

/** SetupBaseS: encapsulates to `recipient`. `ephemeral` is only for deterministic tests. */
export function setupBaseS(
  recipient: HpkePublicKey,
  info: Uint8Array,
  ephemeral: HpkeKeyPair = HpkeKeyPair.generate(),
): { enc: Uint8Array; context: HpkeContext } {
  const enc = ephemeral.publicKey.bytes;
  const shared = kemSharedSecret(dh(ephemeral.privateKey, recipient.keyObject), enc, recipient.bytes);
  return { enc, context: new HpkeContext(keySchedule(shared, info)) };
}

/** SetupBaseR: decapsulates `enc` with the recipient's key pair. */
export function setupBaseR(enc: Uint8Array, recipient: HpkeKeyPair, info: Uint8Array): HpkeContext {
  if (!(enc instanceof Uint8Array) || enc.length !== HPKE_KEY_LENGTH) {
    throw new DecryptionError(`HPKE enc must be ${HPKE_KEY_LENGTH} bytes`);
  }
  let pkE: KeyObject;
  try {
    pkE = importX25519Public(enc);
  } catch {
    throw new DecryptionError("HPKE enc is not an X25519 public key");
  }
  const shared = kemSharedSecret(dh(recipient.privateKey, pkE), enc, recipient.publicKey.bytes);
  return new HpkeContext(keySchedule(shared, info));
}

/** A single-shot HPKE ciphertext. */
export interface HpkeCiphertext {
  enc: Uint8Array;
  ciphertext: Uint8Array;
}

/**
 * Single-shot Seal of RFC 9180 section 6.1 (base mode) with the caller's `info` and `aad`.
 * `ephemeral` is only for deterministic tests.
 */
export function hpkeSealBase(
  recipient: HpkePublicKey,
  info: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
  ephemeral?: HpkeKeyPair,
): HpkeCiphertext {
  const { enc, context } = setupBaseS(recipient, info, ephemeral);
  return { enc, ciphertext: context.seal(aad, plaintext) };
}

/** Single-shot Open of RFC 9180 section 6.1 (base mode); throws DecryptionError. */
export function hpkeOpenBase(
  recipient: HpkeKeyPair,
  sealed: HpkeCiphertext,
  info: Uint8Array,
  aad: Uint8Array,
): Uint8Array {
  return setupBaseR(sealed.enc, recipient, info).open(aad, sealed.ciphertext);
}

/**
 * SendExport of RFC 9180 section 6.2 (base mode): encapsulates to `recipient` and exports
 * `length` bytes for `exporterContext` (MLS external commits use this). `ephemeral` is for tests.
 */
export function hpkeSendExport(
  recipient: HpkePublicKey,
  info: Uint8Array,
  exporterContext: Uint8Array,
  length: number,
  ephemeral?: HpkeKeyPair,
): { enc: Uint8Array; secret: Uint8Array } {
  const { enc, context } = setupBaseS(recipient, info, ephemeral);
  return { enc, secret: context.export(exporterContext, length) };
}

/** ReceiveExport of RFC 9180 section 6.2 (base mode): the secret hpkeSendExport produced for `enc`. */
export function hpkeReceiveExport(
  recipient: HpkeKeyPair,
  enc: Uint8Array,
  info: Uint8Array,
  exporterContext: Uint8Array,
  length: number,
): Uint8Array {
  return setupBaseR(enc, recipient, info).export(exporterContext, length);
}

/** The HPKE info for a labelled use: vec8("Phoenix " + label) ‖ vec32(context). */
export function hpkeInfo(label: string, context: Uint8Array = EMPTY): Uint8Array {
  return encodeWith((w) => w.vec(utf8(LABEL_PREFIX + label), 1, "label").vec(context, 4, "context"));
}

/**
 * Single-shot labelled HPKE seal: info = hpkeInfo(label, infoContext). A ciphertext sealed for one
 * label never opens under another.
 */
export function hpkeSeal(
  recipient: HpkePublicKey,
  label: string,
  plaintext: Uint8Array,
  options: { infoContext?: Uint8Array; aad?: Uint8Array } = {},
): HpkeCiphertext {
  return hpkeSealBase(recipient, hpkeInfo(label, options.infoContext), options.aad ?? EMPTY, plaintext);
}

/** Single-shot labelled HPKE open; throws DecryptionError. */
export function hpkeOpen(
  recipient: HpkeKeyPair,
  label: string,
  sealed: HpkeCiphertext,
  options: { infoContext?: Uint8Array; aad?: Uint8Array } = {},
): Uint8Array {
  return hpkeOpenBase(recipient, sealed, hpkeInfo(label, options.infoContext), options.aad ?? EMPTY);
}

/** Wire encoding of an HPKE ciphertext: enc (32 bytes) ‖ vec32(ciphertext). */
export function encodeHpkeCiphertext(sealed: HpkeCiphertext): Uint8Array {
  return encodeWith((w) =>
    w.fixed(sealed.enc, HPKE_KEY_LENGTH, "enc").vec(sealed.ciphertext, 4, "ciphertext"),
  );
}

/** Decodes encodeHpkeCiphertext's output. */
export function decodeHpkeCiphertext(bytes: Uint8Array): HpkeCiphertext {
  return decodeAll(bytes, "HpkeCiphertext", (r) => ({
    enc: r.fixed("enc", HPKE_KEY_LENGTH),
    ciphertext: r.vec("ciphertext", 4, { min: NT }),
  }));
}

/** The 16-byte key id of an HPKE public key (e.g. which QS queue-config key a config names). */
export function hpkeKeyId(key: HpkePublicKey): Uint8Array {
  return keyId(KdfLabel.HpkeKeyId, key.bytes);
}
