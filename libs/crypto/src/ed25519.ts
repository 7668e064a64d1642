import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import { asBuffer, assertLength, concat } from "./bytes.js";

// Raw Ed25519 on node:crypto KeyObjects. Not exported from the package: everything outside signs
// through the labelled API in signature.ts. Kept separate so the RFC 8032 vectors can test it.

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
