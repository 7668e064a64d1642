import { createCipheriv, createDecipheriv } from "node:crypto";
import { asBuffer } from "./bytes.js";
import { DecryptionError, InvalidInputError } from "./errors.js";

// Raw AES-GCM with a caller-chosen nonce: the AEAD inside HPKE and the one MLS uses for its
// secret tree. Everything Phoenix encrypts itself goes through the key-committing `aeadSeal`
// instead; reusing a (key, nonce) pair here breaks GCM, so callers must derive unique nonces.

/** Size of the AES-GCM nonce and tag this package uses. */
export const AES_GCM_NONCE_LENGTH = 12;
export const AES_GCM_TAG_LENGTH = 16;

function algorithm(key: Uint8Array): "aes-128-gcm" | "aes-256-gcm" {
  if (key.length === 16) return "aes-128-gcm";
  if (key.length === 32) return "aes-256-gcm";
  throw new InvalidInputError(`AES-GCM key must be 16 or 32 bytes, got ${key.length}`);
}

function checkNonce(nonce: Uint8Array): void {
  if (nonce.length !== AES_GCM_NONCE_LENGTH) {
    throw new InvalidInputError(`AES-GCM nonce must be ${AES_GCM_NONCE_LENGTH} bytes`);
  }
}

/** AES-128/256-GCM (by key size) encryption with an explicit 12-byte nonce; returns ciphertext ‖ 16-byte tag. */
export function aesGcmSeal(
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
): Uint8Array {
  const alg = algorithm(key);
  checkNonce(nonce);
  const cipher = createCipheriv(alg, asBuffer(key), asBuffer(nonce), { authTagLength: AES_GCM_TAG_LENGTH });
  if (aad.length > 0) cipher.setAAD(aad);
  const body = cipher.update(plaintext);
  cipher.final();
  const out = new Uint8Array(body.length + AES_GCM_TAG_LENGTH);
  out.set(body, 0);
  out.set(cipher.getAuthTag(), body.length);
  return out;
}

/** Decrypts aesGcmSeal's output; throws DecryptionError for a wrong key, nonce, AAD or any tampering. */
export function aesGcmOpen(
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  ciphertext: Uint8Array,
): Uint8Array {
  const alg = algorithm(key);
  checkNonce(nonce);
  if (ciphertext.length < AES_GCM_TAG_LENGTH)
    throw new DecryptionError("AES-GCM ciphertext shorter than its tag");
  const split = ciphertext.length - AES_GCM_TAG_LENGTH;
  try {
    const decipher = createDecipheriv(alg, asBuffer(key), asBuffer(nonce), {
      authTagLength: AES_GCM_TAG_LENGTH,
    });
    if (aad.length > 0) decipher.setAAD(aad);
    decipher.setAuthTag(ciphertext.subarray(split));
    const head = decipher.update(ciphertext.subarray(0, split));
    const tail = decipher.final();
    return tail.length === 0 ? new Uint8Array(head) : new Uint8Array(Buffer.concat([head, tail]));
  } catch {
    throw new DecryptionError("AES-GCM authentication failed (wrong key, nonce, AAD or tampered ciphertext)");
  }
}
