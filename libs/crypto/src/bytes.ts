import { randomFillSync, timingSafeEqual } from "node:crypto";
import { InvalidInputError } from "./errors.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** UTF-8 encodes a string. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Decodes UTF-8, throwing on malformed input. */
export function fromUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** Lower-case hex of the bytes. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

/** Parses lower- or upper-case hex; rejects odd lengths and non-hex characters. */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new InvalidInputError("invalid hex string");
  return new Uint8Array(Buffer.from(hex, "hex"));
}

/** Concatenates byte arrays into a fresh array. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Constant-time equality for secrets and tags (length is not secret). */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Plain byte equality for public values. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// Small random requests (nonces, keys) are served from a pool refilled in 16 KiB batches: one
// CSPRNG call per batch instead of one per request. Served bytes are zeroed in the pool.
const POOL_SIZE = 16 * 1024;
let pool = new Uint8Array(0);
let poolOffset = 0;

/** `length` bytes from the OS CSPRNG. */
export function randomBytes(length: number): Uint8Array {
  if (length > 1024) {
    const out = new Uint8Array(length);
    randomFillSync(out);
    return out;
  }
  if (poolOffset + length > pool.length) {
    pool = new Uint8Array(POOL_SIZE);
    randomFillSync(pool);
    poolOffset = 0;
  }
  const out = pool.slice(poolOffset, poolOffset + length);
  pool.fill(0, poolOffset, poolOffset + length);
  poolOffset += length;
  return out;
}

/** Throws InvalidInputError unless `bytes` has exactly `length` bytes. */
export function assertLength(bytes: Uint8Array, length: number, what: string): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) {
    throw new InvalidInputError(`${what} must be ${length} bytes`);
  }
}

/** Overwrites a secret buffer with zeros (best effort: the JS engine may hold copies). */
export function wipe(bytes: Uint8Array): void {
  bytes.fill(0);
}

/** A Node Buffer view on the same memory, for node:crypto calls (no copy). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
