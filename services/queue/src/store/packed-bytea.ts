/**
 * Many `bytea` values as one binary parameter: node-postgres sends a `bytea[]` parameter as text,
 * hex-encoding every byte on the way (for a batch of 1 KiB queue messages that costs more than
 * the rest of the statement), while a single `bytea` travels as raw bytes. The values are
 * concatenated and cut out again in SQL by (offset, length) pairs passed as two `int4[]`:
 * `substring(blob from o for l)` for each row of `unnest(offsets, lengths, ...) as v(o, l, ...)`.
 */
export interface PackedBytea {
  blob: Uint8Array;
  offsets: number[];
  lengths: number[];
}

/** Concatenates `values`, recording where each one starts (1-based, as SQL `substring` counts). */
export function packBytea(values: readonly Uint8Array[]): PackedBytea {
  let total = 0;
  for (const v of values) total += v.length;
  const blob = new Uint8Array(total);
  const offsets: number[] = [];
  const lengths: number[] = [];
  let offset = 0;
  for (const v of values) {
    blob.set(v, offset);
    offsets.push(offset + 1);
    lengths.push(v.length);
    offset += v.length;
  }
  return { blob, offsets, lengths };
}
