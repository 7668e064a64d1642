import { DecodeError, InvalidInputError } from "./errors.js";

/**
 * Length padding to size buckets, so a ciphertext's size says little about its content.
 * Padded form: u32 content length ‖ content ‖ zero bytes, total = the smallest bucket that fits;
 * above the largest bucket, the next multiple of it. Removal is unambiguous: the length prefix
 * says where the content ends, and the padding must be all zeros.
 */

/** Default buckets: powers of two from 256 B to 1 MiB (at most 2x overhead above 256 B). */
export const DEFAULT_PADDING_BUCKETS: readonly number[] = Array.from({ length: 13 }, (_, i) => 256 * 2 ** i);

const PREFIX = 4;

/** Checks a bucket list: ascending positive integers, the first able to hold the prefix. */
export function validateBuckets(buckets: readonly number[]): void {
  if (buckets.length === 0) throw new InvalidInputError("padding bucket list is empty");
  let previous = PREFIX;
  for (const b of buckets) {
    if (!Number.isSafeInteger(b) || b <= previous) {
      throw new InvalidInputError("padding buckets must be ascending integers larger than 4");
    }
    previous = b;
  }
}

/** The padded size for a content of `length` bytes. */
export function paddedSize(length: number, buckets: readonly number[] = DEFAULT_PADDING_BUCKETS): number {
  const needed = length + PREFIX;
  for (const b of buckets) if (b >= needed) return b;
  const largest = buckets[buckets.length - 1] as number;
  return Math.ceil(needed / largest) * largest;
}

/** Pads `content` to its bucket. */
export function pad(content: Uint8Array, buckets: readonly number[] = DEFAULT_PADDING_BUCKETS): Uint8Array {
  if (buckets !== DEFAULT_PADDING_BUCKETS) validateBuckets(buckets);
  if (content.length > 0xffffffff - PREFIX) throw new InvalidInputError("content too large to pad");
  const out = new Uint8Array(paddedSize(content.length, buckets));
  new DataView(out.buffer).setUint32(0, content.length);
  out.set(content, PREFIX);
  return out;
}

/** Removes padding; throws DecodeError on a bad length prefix or non-zero padding. */
export function unpad(padded: Uint8Array): Uint8Array {
  if (padded.length < PREFIX) throw new DecodeError("Padded.length", "shorter than the length prefix");
  const length = new DataView(padded.buffer, padded.byteOffset, padded.byteLength).getUint32(0);
  if (length > padded.length - PREFIX)
    throw new DecodeError("Padded.length", "content length exceeds the input");
  for (let i = PREFIX + length; i < padded.length; i++) {
    if (padded[i] !== 0) throw new DecodeError("Padded.padding", "non-zero padding byte");
  }
  return padded.slice(PREFIX, PREFIX + length);
}
