import { fingerprint, utf8 } from "@phoenix/crypto";
import { malformed } from "./errors.js";

/** 3–63 characters from a–z, 0–9, '_' and '-', starting with a letter (auth.proto CreateHandleTbs). */
const HANDLE_PATTERN = /^[a-z][a-z0-9_-]{2,62}$/;

/** Throws INVALID_ARGUMENT unless `handle` follows the handle rules. */
export function validateHandle(handle: string): void {
  if (handle.length < 3 || handle.length > 63) {
    throw malformed("tbs.handle", "must be 3 to 63 characters long");
  }
  if (!HANDLE_PATTERN.test(handle)) {
    throw malformed("tbs.handle", "may contain only a-z, 0-9, '_' and '-' and must start with a letter");
  }
}

/** Label of the handle hash (SHA-256 over the label and the UTF-8 handle). */
export const HANDLE_HASH_LABEL = "HandleHash";

/**
 * The HandleHash of a plaintext handle: the only form the AS keeps. Clients compute the same
 * value to look a handle up.
 */
export function handleHash(handle: string): Uint8Array {
  return fingerprint(HANDLE_HASH_LABEL, utf8(handle));
}
