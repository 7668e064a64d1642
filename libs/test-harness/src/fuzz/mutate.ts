// Schema-agnostic mutation of protobuf requests for the RPC fuzzer. A request is parsed at the
// wire level (tag, wire type, value) and length-delimited values that themselves parse as
// messages are descended into, so a mutation can land anywhere: in the outer request, in the
// `Signed` wrapper, in the signed `tbs` bytes or in a signature.
import type { Prng } from "../random-prng.js";

/** One field of a message as it was on the wire. */
export interface WireField {
  field: number;
  wireType: number;
  /** Varint value (wire type 0). */
  varint?: bigint;
  /** Raw bytes: fixed64/fixed32 values and length-delimited contents. */
  bytes?: Uint8Array;
}

function readVarint(buf: Uint8Array, pos: number): [bigint, number] | undefined {
  let result = 0n;
  let shift = 0n;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) return undefined;
    const b = buf[pos++] as number;
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [result, pos];
    shift += 7n;
  }
  return undefined;
}

function writeVarint(out: number[], value: bigint): void {
  let v = BigInt.asUintN(64, value);
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
}

/** Parses `buf` as a protobuf message, or undefined when it is not one (strictly: every byte used). */
export function parseWire(buf: Uint8Array): WireField[] | undefined {
  const fields: WireField[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const tag = readVarint(buf, pos);
    if (!tag) return undefined;
    pos = tag[1];
    const field = Number(tag[0] >> 3n);
    const wireType = Number(tag[0] & 7n);
    if (field < 1 || field > 536_870_911) return undefined;
    if (wireType === 0) {
      const v = readVarint(buf, pos);
      if (!v) return undefined;
      fields.push({ field, wireType, varint: v[0] });
      pos = v[1];
    } else if (wireType === 1 || wireType === 5) {
      const n = wireType === 1 ? 8 : 4;
      if (pos + n > buf.length) return undefined;
      fields.push({ field, wireType, bytes: buf.subarray(pos, pos + n) });
      pos += n;
    } else if (wireType === 2) {
      const len = readVarint(buf, pos);
      if (!len || len[1] + Number(len[0]) > buf.length) return undefined;
      pos = len[1];
      fields.push({ field, wireType, bytes: buf.subarray(pos, pos + Number(len[0])) });
      pos += Number(len[0]);
    } else return undefined;
  }
  return fields;
}

/** Encodes fields back into a message. */
export function encodeWire(fields: readonly WireField[]): Uint8Array {
  const head: number[] = [];
  const parts: Uint8Array[] = [];
  const flush = () => {
    if (head.length > 0) parts.push(Uint8Array.from(head.splice(0)));
  };
  for (const f of fields) {
    writeVarint(head, (BigInt(f.field) << 3n) | BigInt(f.wireType));
    if (f.wireType === 0) writeVarint(head, f.varint ?? 0n);
    else if (f.wireType === 2) {
      const bytes = f.bytes ?? new Uint8Array();
      writeVarint(head, BigInt(bytes.length));
      flush();
      parts.push(bytes);
    } else {
      flush();
      parts.push(f.bytes ?? new Uint8Array(f.wireType === 1 ? 8 : 4));
    }
  }
  flush();
  return concat(parts);
}

// Takes an array, not rest arguments like @phoenix/crypto's concat: a "huge repeated field"
// mutation joins more parts than a spread call can pass on the stack.
function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** `n` bytes drawn from `rng`. */
export function randomBytes(rng: Prng, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.int(0, 255);
  return out;
}

/**
 * A path to a length-delimited value inside a message: indexes into the field lists of the
 * nested messages, outermost first. Only values that parse as messages are descended into.
 */
type Path = number[];

export interface Node {
  path: Path;
  field: WireField;
  depth: number;
}

export function collect(fields: readonly WireField[], prefix: Path, depth: number, out: Node[]): void {
  fields.forEach((f, i) => {
    const path = [...prefix, i];
    out.push({ path, field: f, depth });
    if (f.wireType === 2 && f.bytes && f.bytes.length > 0 && depth < 8) {
      const inner = parseWire(f.bytes);
      if (inner && inner.length > 0) collect(inner, path, depth + 1, out);
    }
  });
}

/** Replaces the node at `path` with `replace(fields, index)`'s result and re-encodes every parent. */
export function rewrite(
  message: Uint8Array,
  path: Path,
  replace: (fields: WireField[], index: number) => WireField[],
): Uint8Array {
  const fields = parseWire(message);
  if (!fields) return message;
  const [index, ...rest] = path as [number, ...number[]];
  if (rest.length === 0) return encodeWire(replace([...fields], index));
  const parent = fields[index];
  if (!parent?.bytes) return message;
  const copy = [...fields];
  copy[index] = { ...parent, bytes: rewrite(parent.bytes, rest, replace) };
  return encodeWire(copy);
}

/** The mutation kinds, for reports. */
export const MUTATIONS = [
  "random-bytes",
  "empty",
  "bit-flip",
  "truncate",
  "append-garbage",
  "field-drop",
  "field-duplicate",
  "field-bytes-random",
  "field-bytes-empty",
  "field-bytes-oversized",
  "field-bytes-bitflip",
  "field-varint-extreme",
  "field-wiretype",
  "field-swap",
  "signature-flip",
  "huge-repeated",
  "deep-nesting",
  "unknown-field",
] as const;
export type Mutation = (typeof MUTATIONS)[number];

const EXTREME_VARINTS = [0n, 1n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 2n ** 63n, 2n ** 64n - 1n];

/**
 * Mutates `valid` (an encoded request; may be empty when no valid example exists) with a
 * mutation drawn from `rng`, bounded so the result stays below `maxBytes`.
 */
export function mutate(
  rng: Prng,
  valid: Uint8Array,
  maxBytes: number,
): { kind: Mutation; bytes: Uint8Array } {
  const kind = rng.pick(MUTATIONS);
  return { kind, bytes: apply(rng, kind, valid, maxBytes) };
}

function apply(rng: Prng, kind: Mutation, valid: Uint8Array, maxBytes: number): Uint8Array {
  const nodes: Node[] = [];
  const top = parseWire(valid);
  if (top) collect(top, [], 0, nodes);
  const lengthNodes = nodes.filter((n) => n.field.wireType === 2);
  const pickNode = (list: readonly Node[]) => (list.length > 0 ? rng.pick(list) : undefined);
  switch (kind) {
    case "random-bytes":
      return randomBytes(rng, rng.pick([1, 2, 7, 33, 200, 1500, 20_000]));
    case "empty":
      return new Uint8Array();
    case "bit-flip": {
      if (valid.length === 0) return randomBytes(rng, 16);
      const out = Uint8Array.from(valid);
      for (let i = rng.int(1, 8); i > 0; i--) {
        const at = rng.int(0, out.length - 1);
        out[at] = (out[at] as number) ^ (1 << rng.int(0, 7));
      }
      return out;
    }
    case "truncate":
      return valid.length === 0 ? randomBytes(rng, 3) : valid.subarray(0, rng.int(0, valid.length - 1));
    case "append-garbage":
      return concat([valid, randomBytes(rng, rng.int(1, 64))]);
    case "unknown-field":
      return concat([
        valid,
        encodeWire([{ field: rng.int(16, 5000), wireType: 2, bytes: randomBytes(rng, 8) }]),
      ]);
    case "field-drop": {
      const node = pickNode(nodes);
      if (!node) return randomBytes(rng, 8);
      return rewrite(valid, node.path, (fields, i) => fields.filter((_, j) => j !== i));
    }
    case "field-duplicate": {
      const node = pickNode(nodes);
      if (!node) return randomBytes(rng, 8);
      return rewrite(valid, node.path, (fields, i) => [...fields, fields[i] as WireField]);
    }
    case "field-bytes-random":
    case "field-bytes-empty":
    case "field-bytes-oversized":
    case "field-bytes-bitflip": {
      const node = pickNode(lengthNodes);
      if (!node) return randomBytes(rng, 32);
      const old = node.field.bytes ?? new Uint8Array();
      let bytes: Uint8Array;
      if (kind === "field-bytes-empty") bytes = new Uint8Array();
      else if (kind === "field-bytes-random")
        bytes = randomBytes(rng, rng.pick([1, old.length, 16, 32, 64, 300]));
      else if (kind === "field-bytes-oversized") {
        const size = Math.min(
          rng.pick([1025, 65_537, 1_048_577, 3_000_000]),
          Math.max(0, maxBytes - valid.length - 16),
        );
        bytes = new Uint8Array(size).fill(rng.int(0, 255));
      } else {
        bytes = Uint8Array.from(old);
        if (bytes.length > 0) {
          const at = rng.int(0, bytes.length - 1);
          bytes[at] = (bytes[at] as number) ^ (1 << rng.int(0, 7));
        }
      }
      return rewrite(valid, node.path, (fields, i) => {
        fields[i] = { ...(fields[i] as WireField), bytes };
        return fields;
      });
    }
    case "field-varint-extreme": {
      const node = pickNode(nodes.filter((n) => n.field.wireType === 0));
      if (!node)
        return concat([
          valid,
          encodeWire([{ field: rng.int(1, 6), wireType: 0, varint: rng.pick(EXTREME_VARINTS) }]),
        ]);
      return rewrite(valid, node.path, (fields, i) => {
        fields[i] = { ...(fields[i] as WireField), varint: rng.pick(EXTREME_VARINTS) };
        return fields;
      });
    }
    case "field-wiretype": {
      const node = pickNode(nodes);
      if (!node) return randomBytes(rng, 8);
      return rewrite(valid, node.path, (fields, i) => {
        const f = fields[i] as WireField;
        fields[i] =
          f.wireType === 2
            ? { field: f.field, wireType: 0, varint: BigInt(f.bytes?.length ?? 0) }
            : { field: f.field, wireType: 2, bytes: f.bytes ?? randomBytes(rng, 4) };
        return fields;
      });
    }
    case "field-swap": {
      // Two values of the same message trade places (e.g. tbs and signature, two ids).
      const node = pickNode(nodes);
      if (!node) return randomBytes(rng, 8);
      return rewrite(valid, node.path, (fields, i) => {
        const j = rng.int(0, fields.length - 1);
        const a = fields[i] as WireField;
        const b = fields[j] as WireField;
        fields[i] = { ...b, field: a.field };
        fields[j] = { ...a, field: b.field };
        return fields;
      });
    }
    case "signature-flip": {
      // Signatures are the 64-byte values (Ed25519); flipping one bit must fail verification.
      const node = pickNode(lengthNodes.filter((n) => n.field.bytes?.length === 64)) ?? pickNode(lengthNodes);
      if (!node) return randomBytes(rng, 64);
      return rewrite(valid, node.path, (fields, i) => {
        const bytes = Uint8Array.from((fields[i] as WireField).bytes ?? new Uint8Array());
        if (bytes.length > 0) {
          const at = rng.int(0, bytes.length - 1);
          bytes[at] = (bytes[at] as number) ^ (1 << rng.int(0, 7));
        }
        fields[i] = { ...(fields[i] as WireField), bytes };
        return fields;
      });
    }
    case "huge-repeated": {
      // One field repeated until the message is large: repeated-field bounds and decode cost.
      const node = pickNode(nodes);
      const item = node
        ? encodeWire([node.field])
        : encodeWire([{ field: 1, wireType: 2, bytes: randomBytes(rng, 8) }]);
      const budget = Math.max(
        0,
        Math.min(maxBytes - valid.length - 16, rng.pick([10_000, 200_000, 2_000_000])),
      );
      const count = Math.max(1, Math.floor(budget / Math.max(1, item.length)));
      const parts: Uint8Array[] = [valid];
      for (let i = 0; i < count; i++) parts.push(item);
      return concat(parts);
    }
    case "deep-nesting": {
      // A length-delimited field 1 inside itself thousands of times: recursion limits of decoders.
      let inner: Uint8Array = randomBytes(rng, 2);
      const depth = rng.pick([100, 1000, 10_000]);
      const field = node1(rng, nodes);
      for (let i = 0; i < depth; i++) inner = encodeWire([{ field, wireType: 2, bytes: inner }]);
      return inner;
    }
  }
}

function node1(rng: Prng, nodes: readonly Node[]): number {
  const messages = nodes.filter((n) => n.field.wireType === 2 && n.depth === 0);
  return messages.length > 0 ? rng.pick(messages).field.field : 1;
}
