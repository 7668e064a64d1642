import { aeadOpen, aeadSeal } from "./aead.js";
import { DEFAULT_PADDING_BUCKETS, pad, unpad } from "./padding.js";

/**
 * Encryption at rest (EAR): padding to size buckets, then the key-committing AEAD. Used for DS
 * group state (under the group's EAR key that clients send with each request), queue messages,
 * push tokens and other server-held blobs.
 */

/** Options of encryptAtRest. */
export interface EarOptions {
  /** Bytes bound to the ciphertext but not stored in it, e.g. the row's id (stops row swapping). */
  aad?: Uint8Array;
  /** Size buckets to pad to (default: DEFAULT_PADDING_BUCKETS). */
  buckets?: readonly number[];
}

/** Pads and encrypts `plaintext` under the EAR `key` for purpose `label`. */
export function encryptAtRest(
  key: Uint8Array,
  label: string,
  plaintext: Uint8Array,
  options: EarOptions = {},
): Uint8Array {
  return aeadSeal(key, label, pad(plaintext, options.buckets ?? DEFAULT_PADDING_BUCKETS), options.aad);
}

/** Decrypts encryptAtRest's output and strips the padding. */
export function decryptAtRest(
  key: Uint8Array,
  label: string,
  ciphertext: Uint8Array,
  options: { aad?: Uint8Array } = {},
): Uint8Array {
  return unpad(aeadOpen(key, label, ciphertext, options.aad));
}
