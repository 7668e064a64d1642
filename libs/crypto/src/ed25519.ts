import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import { asBuffer, assertLength, bytesEqual, concat } from "./bytes.js";
import { InvalidInputError } from "./errors.js";

// Raw (unlabelled) Ed25519 on node:crypto KeyObjects. Phoenix objects sign through the labelled
// API in signature.ts; the raw functions are exported for the MLS crypto provider (MLS applies its
// own SignWithLabel) and tested against the RFC 8032 vectors.

/** Size of an Ed25519 seed (RFC 8032 secret key), public key and signature. */
export const ED25519_SEED_LENGTH = 32;
export const ED25519_PUBLIC_KEY_LENGTH = 32;
export const ED25519_SIGNATURE_LENGTH = 64;

// PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410): a constant 16-byte header.
const PKCS8_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

/** A private key object plus its raw public key. */
export interface Ed25519KeyPair {
  privateKey: KeyObject;
  publicKey: Uint8Array;
  seed: Uint8Array;
}

/** Imports an RFC 8032 seed. */
export function ed25519FromSeed(seed: Uint8Array): Ed25519KeyPair {
  assertLength(seed, ED25519_SEED_LENGTH, "Ed25519 seed");
  const privateKey = createPrivateKey({
    key: asBuffer(concat(PKCS8_PREFIX, seed)),
    format: "der",
    type: "pkcs8",
  });
  return { privateKey, publicKey: rawPublicKey(privateKey), seed: seed.slice() };
}

/** Length of a PKCS#8-wrapped Ed25519 seed (RFC 8410), the form WebCrypto exports. */
export const ED25519_PKCS8_LENGTH = PKCS8_PREFIX.length + ED25519_SEED_LENGTH;

/** Imports a PKCS#8 (RFC 8410) Ed25519 private key of exactly the 48-byte form WebCrypto exports. */
export function ed25519FromPkcs8(der: Uint8Array): Ed25519KeyPair {
  assertLength(der, ED25519_PKCS8_LENGTH, "Ed25519 PKCS#8 private key");
  if (!bytesEqual(der.subarray(0, PKCS8_PREFIX.length), PKCS8_PREFIX)) {
    throw new InvalidInputError("not a PKCS#8 Ed25519 private key");
  }
  return ed25519FromSeed(der.subarray(PKCS8_PREFIX.length));
}

/** Generates a fresh key pair. */
export function ed25519Generate(): Ed25519KeyPair {
  const { privateKey } = generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" });
  return { privateKey, publicKey: rawPublicKey(privateKey), seed: fromB64Url(jwk.d ?? "") };
}

/** Imports a raw 32-byte public key through JWK (much faster than SPKI-DER on this runtime). */
export function ed25519PublicKey(raw: Uint8Array): KeyObject {
  assertLength(raw, ED25519_PUBLIC_KEY_LENGTH, "Ed25519 public key");
  return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: toB64Url(raw) }, format: "jwk" });
}

/** Plain Ed25519 signature over `message`. */
export function ed25519Sign(privateKey: KeyObject, message: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, message, privateKey));
}

/** Plain Ed25519 verification; false for any malformed input. */
export function ed25519Verify(publicKey: KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== ED25519_SIGNATURE_LENGTH) return false;
  try {
    return verify(null, message, publicKey, signature);
  } catch {
    return false;
  }
}

function rawPublicKey(privateKey: KeyObject): Uint8Array {
  const jwk = createPublicKey(privateKey).export({ format: "jwk" });
  return fromB64Url(jwk.x ?? "");
}

/** Base64url without padding (JWK). */
export function toB64Url(bytes: Uint8Array): string {
  return asBuffer(bytes).toString("base64url");
}

/** Parses base64url (JWK). */
export function fromB64Url(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, "base64url"));
}
