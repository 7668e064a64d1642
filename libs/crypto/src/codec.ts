import { fromUtf8, utf8 } from "./bytes.js";
import { DecodeError, InvalidInputError, UnsupportedVersionError } from "./errors.js";

/**
 * A deterministic binary codec in TLS presentation style: big-endian fixed-width integers,
 * vectors with a 1-, 2- or 4-byte length prefix and explicit bounds, one version byte in front of
 * every top-level structure. There is exactly one encoding per value, so signatures over encoded
 * bytes are stable and a decoder can reject anything that is not that encoding.
 */

/** Bounds for a vector's length in bytes (inclusive). */
export interface LengthBounds {
  min?: number;
  max?: number;
}

const PREFIX_MAX = { 1: 0xff, 2: 0xffff, 4: 0xffffffff } as const;
type PrefixWidth = keyof typeof PREFIX_MAX;

/** Builds an encoding field by field. */
export class Writer {
  private readonly chunks: Uint8Array[] = [];
  private size = 0;

  private push(chunk: Uint8Array): this {
    this.chunks.push(chunk);
    this.size += chunk.length;
    return this;
  }

  /** Unsigned 8-bit integer. */
  u8(value: number): this {
    checkInt(value, 0xff, "u8");
    return this.push(Uint8Array.of(value));
  }

  /** Unsigned 16-bit big-endian integer. */
  u16(value: number): this {
    checkInt(value, 0xffff, "u16");
    return this.push(Uint8Array.of(value >>> 8, value & 0xff));
  }

  /** Unsigned 32-bit big-endian integer. */
  u32(value: number): this {
    checkInt(value, 0xffffffff, "u32");
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, value);
    return this.push(out);
  }

  /** Unsigned 64-bit big-endian integer given as a safe JS integer (timestamps, sequence numbers). */
  u64(value: number): this {
    checkInt(value, Number.MAX_SAFE_INTEGER, "u64");
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, BigInt(value));
    return this.push(out);
  }

  /** Boolean as one byte, 0 or 1. */
  bool(value: boolean): this {
    return this.u8(value ? 1 : 0);
  }

  /** Bytes of a fixed, known length (keys, hashes, uuids) without a prefix. */
  fixed(bytes: Uint8Array, length: number, field = "fixed"): this {
    if (bytes.length !== length) throw new InvalidInputError(`${field} must be ${length} bytes`);
    return this.push(bytes);
  }

  /** Length-prefixed bytes; `width` is the prefix size in bytes. */
  vec(bytes: Uint8Array, width: PrefixWidth, field = "vector", bounds: LengthBounds = {}): this {
    const max = Math.min(bounds.max ?? PREFIX_MAX[width], PREFIX_MAX[width]);
    if (bytes.length > max || bytes.length < (bounds.min ?? 0)) {
      throw new InvalidInputError(`${field} length ${bytes.length} outside [${bounds.min ?? 0}, ${max}]`);
    }
    if (width === 1) this.u8(bytes.length);
    else if (width === 2) this.u16(bytes.length);
    else this.u32(bytes.length);
    return this.push(bytes);
  }

  /** Length-prefixed UTF-8 string. */
  str(text: string, width: PrefixWidth, field = "string", bounds: LengthBounds = {}): this {
    return this.vec(utf8(text), width, field, bounds);
  }

  /** The bytes written so far. */
  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let offset = 0;
    for (const c of this.chunks) {
      out.set(c, offset);
      offset += c.length;
    }
    return out;
  }
}

function checkInt(value: number, max: number, kind: string): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new InvalidInputError(`${kind} out of range: ${value}`);
  }
}

/** Reads an encoding field by field; every read names its field so errors say what was wrong. */
export class Reader {
  private offset = 0;

  constructor(
    private readonly bytes: Uint8Array,
    /** Name of the structure being decoded, prefixed to every field name in errors. */
    readonly struct: string,
  ) {}

  private take(length: number, field: string): Uint8Array {
    if (this.offset + length > this.bytes.length) {
      throw new DecodeError(
        `${this.struct}.${field}`,
        `truncated: need ${length} bytes, ${this.remaining} left`,
      );
    }
    const out = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  /** Bytes not yet read. */
  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  u8(field: string): number {
    return this.take(1, field)[0] as number;
  }

  u16(field: string): number {
    const b = this.take(2, field);
    return ((b[0] as number) << 8) | (b[1] as number);
  }

  u32(field: string): number {
    const b = this.take(4, field);
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0);
  }

  u64(field: string): number {
    const b = this.take(8, field);
    const v = new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0);
    if (v > BigInt(Number.MAX_SAFE_INTEGER))
      throw new DecodeError(`${this.struct}.${field}`, "value too large");
    return Number(v);
  }

  bool(field: string): boolean {
    const v = this.u8(field);
    if (v > 1) throw new DecodeError(`${this.struct}.${field}`, `invalid boolean ${v}`);
    return v === 1;
  }

  /** Fixed-length bytes; returns a copy so callers may keep it after the input is reused. */
  fixed(field: string, length: number): Uint8Array {
    return this.take(length, field).slice();
  }

  /** Length-prefixed bytes with bounds; returns a copy. */
  vec(field: string, width: PrefixWidth, bounds: LengthBounds = {}): Uint8Array {
    const length = width === 1 ? this.u8(field) : width === 2 ? this.u16(field) : this.u32(field);
    const max = bounds.max ?? PREFIX_MAX[width];
    if (length > max || length < (bounds.min ?? 0)) {
      throw new DecodeError(
        `${this.struct}.${field}`,
        `length ${length} outside [${bounds.min ?? 0}, ${max}]`,
      );
    }
    return this.take(length, field).slice();
  }

  /** Length-prefixed UTF-8 string with bounds (in bytes). */
  str(field: string, width: PrefixWidth, bounds: LengthBounds = {}): string {
    const raw = this.vec(field, width, bounds);
    try {
      return fromUtf8(raw);
    } catch {
      throw new DecodeError(`${this.struct}.${field}`, "invalid UTF-8");
    }
  }

  /** Reads the version byte and checks it is one of `supported`. */
  version(supported: readonly number[]): number {
    const v = this.u8("version");
    if (!supported.includes(v)) throw new UnsupportedVersionError(`${this.struct}.version`, v);
    return v;
  }

  /** Throws a DecodeError naming a field for a semantically invalid value. */
  fail(field: string, reason: string): never {
    throw new DecodeError(`${this.struct}.${field}`, reason);
  }

  /** Asserts the whole input was consumed. */
  end(): void {
    if (this.remaining !== 0) throw new DecodeError(this.struct, `${this.remaining} trailing bytes`);
  }
}

/** Decodes `bytes` completely with `read`, rejecting trailing bytes. */
export function decodeAll<T>(bytes: Uint8Array, struct: string, read: (r: Reader) => T): T {
  if (!(bytes instanceof Uint8Array)) throw new DecodeError(struct, "not a byte array");
  const r = new Reader(bytes, struct);
  const value = read(r);
  r.end();
  return value;
}

/** Encodes with a fresh writer. */
export function encodeWith(write: (w: Writer) => void): Uint8Array {
  const w = new Writer();
  write(w);
  return w.finish();
}
