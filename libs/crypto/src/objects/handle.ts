import { scryptSync } from "node:crypto";
import { utf8 } from "../bytes.js";
import { InvalidInputError } from "../errors.js";
import { LABEL_PREFIX } from "../hash.js";

/**
 * HandleHash: the only form in which the AS stores and looks up a user handle. A memory-hard hash
 * (scrypt, N = 2^14, r = 8, p = 1, ≈16 MiB; constant protocol salt) so that a copy of the AS
 * database does not turn into a handle list by hashing a dictionary cheaply. Clients compute it;
 * the server only compares. The handle must already be in its canonical form (the AS's handle
 * grammar); only Unicode NFC normalisation is applied here.
 */
const SALT = utf8(`${LABEL_PREFIX}HandleHash v1`);
const MAX_HANDLE_BYTES = 256;

/** The 32-byte HandleHash of `handle`. */
export function handleHash(handle: string): Uint8Array {
  const bytes = utf8(handle.normalize("NFC"));
  if (bytes.length === 0 || bytes.length > MAX_HANDLE_BYTES) {
    throw new InvalidInputError(`handle must be 1..${MAX_HANDLE_BYTES} bytes`);
  }
  return new Uint8Array(scryptSync(bytes, SALT, 32, { N: 2 ** 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }));
}
