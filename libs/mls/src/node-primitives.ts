import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  randomFillSync,
  timingSafeEqual,
} from "node:crypto";

// DER prefixes that wrap a raw 32-byte key (RFC 8410): PKCS#8 for private, SPKI for public keys.
const PKCS8_ED25519 = hex("302e020100300506032b657004220420");
const PKCS8_X25519 = hex("302e020100300506032b656e04220420");
const SPKI_ED25519 = hex("302a300506032b6570032100");
const SPKI_X25519 = hex("302a300506032b656e032100");

/** The two curve families ciphersuite 1 uses. */
export type Curve = "ed25519" | "x25519";

function hex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s, "hex"));
}

/** Copy a Buffer (possibly a view into Node's shared pool) into a standalone Uint8Array. */
export function toBytes(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(b.byteLength);
  out.set(b);
  return out;
}

/** Fresh random bytes in their own ArrayBuffer (never a view into Node's buffer pool). */
export function randomBytes(n: number): Uint8Array {
  return randomFillSync(new Uint8Array(n));
}

/** Constant-time equality that tolerates different lengths. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && timingSafeEqual(a, b);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.byteLength;
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

export { concat as concatBytes };

/** Import a raw 32-byte private key (seed) as a Node KeyObject. */
export function importRawPrivateKey(curve: Curve, raw: Uint8Array): KeyObject {
  const prefix = curve === "ed25519" ? PKCS8_ED25519 : PKCS8_X25519;
  return createPrivateKey({ key: Buffer.from(concat([prefix, raw])), format: "der", type: "pkcs8" });
}

/** Import a raw 32-byte public key as a Node KeyObject. */
export function importRawPublicKey(curve: Curve, raw: Uint8Array): KeyObject {
  const prefix = curve === "ed25519" ? SPKI_ED25519 : SPKI_X25519;
  return createPublicKey({ key: Buffer.from(concat([prefix, raw])), format: "der", type: "spki" });
}

/** The raw 32 bytes of an Ed25519/X25519 private KeyObject. */
export function exportRawPrivateKey(key: KeyObject): Uint8Array {
  const der = key.export({ format: "der", type: "pkcs8" });
  return toBytes(der.subarray(der.byteLength - 32));
}

/** The raw 32 bytes of an Ed25519/X25519 public KeyObject. */
export function exportRawPublicKey(key: KeyObject): Uint8Array {
  const der = key.export({ format: "der", type: "spki" });
  return toBytes(der.subarray(der.byteLength - 32));
}

/** SHA-256 digest. */
export function sha256(data: Uint8Array): Uint8Array {
  return toBytes(createHash("sha256").update(data).digest());
}

/** HMAC-SHA-256. An empty key is HMAC's all-zero key, which is what HKDF-Extract needs for an empty salt. */
export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  return toBytes(createHmac("sha256", key).update(data).digest());
}

/** HKDF-Extract (RFC 5869) with SHA-256. */
export function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  return hmacSha256(salt, ikm);
}

/** HKDF-Expand (RFC 5869) with SHA-256. */
export function hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  if (length > 255 * 32) throw new RangeError("HKDF-Expand length too large");
  const out = new Uint8Array(length);
  let previous: Uint8Array = new Uint8Array(0);
  let offset = 0;
  for (let counter = 1; offset < length; counter++) {
    const h = createHmac("sha256", prk);
    h.update(previous);
    h.update(info);
    h.update(Uint8Array.of(counter));
    previous = toBytes(h.digest());
    out.set(previous.subarray(0, Math.min(32, length - offset)), offset);
    offset += 32;
  }
  return out;
}

function gcmAlgorithm(key: Uint8Array): "aes-128-gcm" | "aes-256-gcm" {
  if (key.byteLength === 16) return "aes-128-gcm";
  if (key.byteLength === 32) return "aes-256-gcm";
  throw new RangeError(`AES-GCM key must be 16 or 32 bytes, got ${key.byteLength}`);
}

/** AES-GCM encryption; returns ciphertext || 16-byte tag. */
export function aesGcmSeal(
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
): Uint8Array {
  const cipher = createCipheriv(gcmAlgorithm(key), key, nonce);
  if (aad.byteLength > 0) cipher.setAAD(aad);
  const head = cipher.update(plaintext);
  const tail = cipher.final();
  return concat([head, tail, cipher.getAuthTag()]);
}

/** AES-GCM decryption of ciphertext || tag; throws when authentication fails. */
export function aesGcmOpen(
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  ciphertext: Uint8Array,
): Uint8Array {
  if (ciphertext.byteLength < 16) throw new RangeError("AES-GCM ciphertext shorter than its tag");
  const decipher = createDecipheriv(gcmAlgorithm(key), key, nonce);
  decipher.setAuthTag(ciphertext.subarray(ciphertext.byteLength - 16));
  if (aad.byteLength > 0) decipher.setAAD(aad);
  const head = decipher.update(ciphertext.subarray(0, ciphertext.byteLength - 16));
  const tail = decipher.final();
  return concat([head, tail]);
}

/**
 * A bounded map from key bytes to imported KeyObjects. Importing a key costs more than using
 * it, and a group operation touches the same few public keys again and again.
 */
export class KeyObjectCache {
  private readonly entries = new Map<string, KeyObject>();

  constructor(private readonly maxEntries: number) {}

  get(curve: Curve, raw: Uint8Array, make: () => KeyObject): KeyObject {
    const id = curve + Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("base64");
    const hit = this.entries.get(id);
    if (hit !== undefined) {
      // Refresh recency: Map iteration order is insertion order.
      this.entries.delete(id);
      this.entries.set(id, hit);
      return hit;
    }
    const made = make();
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
    this.entries.set(id, made);
    return made;
  }

  get size(): number {
    return this.entries.size;
  }
}
