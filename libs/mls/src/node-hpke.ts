import { createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from "node:crypto";
import {
  aesGcmOpen,
  aesGcmSeal,
  concatBytes,
  exportRawPrivateKey,
  exportRawPublicKey,
  hkdfExpand,
  hkdfExtract,
  importRawPrivateKey,
  importRawPublicKey,
  type KeyObjectCache,
  toBytes,
} from "./node-primitives.js";

/**
 * RFC 9180 HPKE, base mode, for DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-128-GCM — the HPKE
 * suite of MLS ciphersuite 1 — on node:crypto. Only what MLS needs: single-shot seal/open and
 * the secret export used by external commits.
 */

const enc = new TextEncoder();
const KEM_SUITE_ID = concatBytes([enc.encode("KEM"), Uint8Array.of(0x00, 0x20)]);
const HPKE_SUITE_ID = concatBytes([enc.encode("HPKE"), Uint8Array.of(0x00, 0x20, 0x00, 0x01, 0x00, 0x01)]);
const VERSION_LABEL = enc.encode("HPKE-v1");
const MODE_BASE = 0x00;
const N_SECRET = 32;
const N_K = 16;
const N_N = 12;
const N_H = 32;
const EMPTY = new Uint8Array(0);

/** An HPKE public key: raw bytes plus the imported KeyObject. */
export interface HpkePublicKey {
  readonly kind: "hpke-x25519-public";
  readonly raw: Uint8Array;
  readonly key: KeyObject;
}

/** An HPKE private key: raw bytes plus the imported KeyObject and its public key. */
export interface HpkePrivateKey {
  readonly kind: "hpke-x25519-private";
  readonly raw: Uint8Array;
  readonly key: KeyObject;
  readonly publicRaw: Uint8Array;
}

/** Raised when HPKE decryption or decapsulation fails. */
export class HpkeOpenError extends Error {
  override name = "HpkeOpenError";
}

function labeledExtract(suiteId: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array): Uint8Array {
  return hkdfExtract(salt, concatBytes([VERSION_LABEL, suiteId, enc.encode(label), ikm]));
}

function labeledExpand(
  suiteId: Uint8Array,
  prk: Uint8Array,
  label: string,
  info: Uint8Array,
  length: number,
): Uint8Array {
  const lengthPrefix = Uint8Array.of((length >> 8) & 0xff, length & 0xff);
  return hkdfExpand(
    prk,
    concatBytes([lengthPrefix, VERSION_LABEL, suiteId, enc.encode(label), info]),
    length,
  );
}

function dh(privateKey: KeyObject, publicKey: KeyObject): Uint8Array {
  const shared = toBytes(diffieHellman({ privateKey, publicKey }));
  // RFC 9180 §7.1.4: an all-zero X25519 output (small-order peer key) must abort.
  if (shared.every((b) => b === 0)) throw new HpkeOpenError("X25519 produced the all-zero shared secret");
  return shared;
}

function extractAndExpand(dhOut: Uint8Array, kemContext: Uint8Array): Uint8Array {
  const eaePrk = labeledExtract(KEM_SUITE_ID, EMPTY, "eae_prk", dhOut);
  return labeledExpand(KEM_SUITE_ID, eaePrk, "shared_secret", kemContext, N_SECRET);
}

interface Context {
  key: Uint8Array;
  baseNonce: Uint8Array;
  exporterSecret: Uint8Array;
}

function keySchedule(sharedSecret: Uint8Array, info: Uint8Array): Context {
  const pskIdHash = labeledExtract(HPKE_SUITE_ID, EMPTY, "psk_id_hash", EMPTY);
  const infoHash = labeledExtract(HPKE_SUITE_ID, EMPTY, "info_hash", info);
  const context = concatBytes([Uint8Array.of(MODE_BASE), pskIdHash, infoHash]);
  const secret = labeledExtract(HPKE_SUITE_ID, sharedSecret, "secret", EMPTY);
  return {
    key: labeledExpand(HPKE_SUITE_ID, secret, "key", context, N_K),
    baseNonce: labeledExpand(HPKE_SUITE_ID, secret, "base_nonce", context, N_N),
    exporterSecret: labeledExpand(HPKE_SUITE_ID, secret, "exp", context, N_H),
  };
}

/** HPKE over node:crypto with imported keys kept in a shared cache. */
export class NodeHpke {
  constructor(private readonly publicKeys: KeyObjectCache) {}

  importPublicKey(raw: Uint8Array): HpkePublicKey {
    if (raw.byteLength !== 32)
      throw new RangeError(`X25519 public key must be 32 bytes, got ${raw.byteLength}`);
    const copy = toBytes(raw);
    return {
      kind: "hpke-x25519-public",
      raw: copy,
      key: this.publicKeys.get("x25519", copy, () => importRawPublicKey("x25519", copy)),
    };
  }

  importPrivateKey(raw: Uint8Array): HpkePrivateKey {
    if (raw.byteLength !== 32)
      throw new RangeError(`X25519 private key must be 32 bytes, got ${raw.byteLength}`);
    const key = importRawPrivateKey("x25519", raw);
    return {
      kind: "hpke-x25519-private",
      raw: toBytes(raw),
      key,
      publicRaw: exportRawPublicKey(createPublicKey(key)),
    };
  }

  /** RFC 9180 §7.1.3 DeriveKeyPair for X25519 (the private key is the expanded bytes, unclamped). */
  deriveKeyPair(ikm: Uint8Array): { privateKey: HpkePrivateKey; publicKey: HpkePublicKey } {
    const dkpPrk = labeledExtract(KEM_SUITE_ID, EMPTY, "dkp_prk", ikm);
    const sk = labeledExpand(KEM_SUITE_ID, dkpPrk, "sk", EMPTY, 32);
    const privateKey = this.importPrivateKey(sk);
    return { privateKey, publicKey: this.importPublicKey(privateKey.publicRaw) };
  }

  generateKeyPair(): { privateKey: HpkePrivateKey; publicKey: HpkePublicKey } {
    const pair = generateKeyPairSync("x25519");
    const raw = exportRawPrivateKey(pair.privateKey);
    const publicRaw = exportRawPublicKey(pair.publicKey);
    return {
      privateKey: { kind: "hpke-x25519-private", raw, key: pair.privateKey, publicRaw },
      publicKey: { kind: "hpke-x25519-public", raw: publicRaw, key: pair.publicKey },
    };
  }

  private encap(recipient: HpkePublicKey): { sharedSecret: Uint8Array; enc: Uint8Array } {
    const ephemeral = this.generateKeyPair();
    const dhOut = dh(ephemeral.privateKey.key, recipient.key);
    const encapsulated = ephemeral.publicKey.raw;
    return {
      sharedSecret: extractAndExpand(dhOut, concatBytes([encapsulated, recipient.raw])),
      enc: encapsulated,
    };
  }

  private decap(encapsulated: Uint8Array, recipient: HpkePrivateKey): Uint8Array {
    if (encapsulated.byteLength !== 32) throw new HpkeOpenError("HPKE enc must be 32 bytes");
    const ephemeral = this.publicKeys.get("x25519", encapsulated, () =>
      importRawPublicKey("x25519", encapsulated),
    );
    const dhOut = dh(recipient.key, ephemeral);
    return extractAndExpand(dhOut, concatBytes([encapsulated, recipient.publicRaw]));
  }

  seal(
    recipient: HpkePublicKey,
    plaintext: Uint8Array,
    info: Uint8Array,
    aad: Uint8Array = EMPTY,
  ): { ct: Uint8Array; enc: Uint8Array } {
    const { sharedSecret, enc: encapsulated } = this.encap(recipient);
    const ctx = keySchedule(sharedSecret, info);
    // Single-shot: sequence number 0, so the nonce is the base nonce.
    return { ct: aesGcmSeal(ctx.key, ctx.baseNonce, aad, plaintext), enc: encapsulated };
  }

  open(
    recipient: HpkePrivateKey,
    encapsulated: Uint8Array,
    ciphertext: Uint8Array,
    info: Uint8Array,
    aad: Uint8Array = EMPTY,
  ): Uint8Array {
    const ctx = keySchedule(this.decap(encapsulated, recipient), info);
    try {
      return aesGcmOpen(ctx.key, ctx.baseNonce, aad, ciphertext);
    } catch (e) {
      throw new HpkeOpenError(`HPKE open failed: ${(e as Error).message}`);
    }
  }

  exportSecret(
    recipient: HpkePublicKey,
    exporterContext: Uint8Array,
    length: number,
    info: Uint8Array,
  ): { enc: Uint8Array; secret: Uint8Array } {
    const { sharedSecret, enc: encapsulated } = this.encap(recipient);
    const ctx = keySchedule(sharedSecret, info);
    return {
      enc: encapsulated,
      secret: labeledExpand(HPKE_SUITE_ID, ctx.exporterSecret, "sec", exporterContext, length),
    };
  }

  importSecret(
    recipient: HpkePrivateKey,
    exporterContext: Uint8Array,
    encapsulated: Uint8Array,
    length: number,
    info: Uint8Array,
  ): Uint8Array {
    const ctx = keySchedule(this.decap(encapsulated, recipient), info);
    return labeledExpand(HPKE_SUITE_ID, ctx.exporterSecret, "sec", exporterContext, length);
  }
}
