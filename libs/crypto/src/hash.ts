import { createHash, createHmac } from "node:crypto";
import { asBuffer, utf8 } from "./bytes.js";
import { encodeWith } from "./codec.js";
import { InvalidInputError } from "./errors.js";

/** Output length of SHA-256 and of every HKDF-SHA256 secret in this package. */
export const HASH_LENGTH = 32;

/** Prefix of every label in this package (signatures, KDF, AEAD, HPKE info) for domain separation. */
export const LABEL_PREFIX = "Phoenix ";

/** SHA-256 of the concatenation of `parts`. */
export function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** HMAC-SHA256. */
export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac("sha256", asBuffer(key)).update(data).digest());
}

/** HKDF-Extract (RFC 5869) with SHA-256. */
export function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  return hmacSha256(salt.length === 0 ? new Uint8Array(HASH_LENGTH) : salt, ikm);
}

/** HKDF-Expand (RFC 5869) with SHA-256. */
export function hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  if (length > 255 * HASH_LENGTH || length < 0) throw new InvalidInputError("HKDF output too long");
  const out = new Uint8Array(length);
  let previous = new Uint8Array(0);
  let offset = 0;
  for (let counter = 1; offset < length; counter++) {
    const h = createHmac("sha256", asBuffer(prk));
    h.update(previous);
    h.update(info);
    h.update(Uint8Array.of(counter));
    previous = new Uint8Array(h.digest());
    out.set(previous.subarray(0, Math.min(HASH_LENGTH, length - offset)), offset);
    offset += HASH_LENGTH;
  }
  return out;
}

/**
 * Derives `length` bytes from `secret` for one purpose (`label`) and one context, in the style of
 * MLS ExpandWithLabel: info = u16 length ‖ vec8("Phoenix " + label) ‖ vec32(context). Distinct
 * labels give independent keys, so a key derived for one use can never serve another.
 */
export function expandWithLabel(
  secret: Uint8Array,
  label: string,
  context: Uint8Array,
  length: number,
): Uint8Array {
  const info = encodeWith((w) =>
    w
      .u16(length)
      .vec(utf8(LABEL_PREFIX + label), 1, "label")
      .vec(context, 4, "context"),
  );
  return hkdfExpand(secret, info, length);
}

/** A credential or key fingerprint: SHA-256 over a label and the exact encoded bytes. */
export function fingerprint(label: string, encoded: Uint8Array): Uint8Array {
  return sha256(
    encodeWith((w) => w.vec(utf8(LABEL_PREFIX + label), 1, "label")),
    encoded,
  );
}

/** Length of a key id. */
export const KEY_ID_LENGTH = 16;

/**
 * A short public identifier of a public key (what a sealed queue config or a federation key
 * list names): the first 16 bytes of a labelled SHA-256 fingerprint of the raw key.
 */
export function keyId(label: string, publicKey: Uint8Array): Uint8Array {
  return fingerprint(label, publicKey).slice(0, KEY_ID_LENGTH);
}
