import { malformed } from "./errors.js";

/** 3–63 characters from a–z, 0–9, '_' and '-', starting with a letter (auth.proto CreateHandleTbs). */
const HANDLE_PATTERN = /^[a-z][a-z0-9_-]{2,62}$/;

/**
 * Throws INVALID_ARGUMENT unless `handle` follows the handle rules. The AS stores only the
 * handle's HandleHash, libs/crypto's `handleHash` (the same function clients use to look a handle
 * up); validating first keeps the memory-hard hash off arbitrary input.
 */
export function validateHandle(handle: string): void {
  if (handle.length < 3 || handle.length > 63) {
    throw malformed("tbs.handle", "must be 3 to 63 characters long");
  }
  if (!HANDLE_PATTERN.test(handle)) {
    throw malformed("tbs.handle", "may contain only a-z, 0-9, '_' and '-' and must start with a letter");
  }
}
