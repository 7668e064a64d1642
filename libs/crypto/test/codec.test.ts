import { describe, expect, it } from "vitest";
import {
  DecodeError,
  decodeAll,
  encodeWith,
  InvalidInputError,
  UnsupportedVersionError,
} from "../src/index.js";

interface Sample {
  id: number;
  stamp: number;
  key: Uint8Array;
  name: string;
  blob: Uint8Array;
}

function encodeSample(s: Sample): Uint8Array {
  return encodeWith((w) =>
    w
      .u8(1)
      .u16(s.id)
      .u64(s.stamp)
      .fixed(s.key, 4, "key")
      .str(s.name, 1, "name", { max: 10 })
      .vec(s.blob, 4, "blob", { max: 1000 }),
  );
}

function decodeSample(bytes: Uint8Array): Sample {
  return decodeAll(bytes, "Sample", (r) => {
    r.version([1]);
    return {
      id: r.u16("id"),
      stamp: r.u64("stamp"),
      key: r.fixed("key", 4),
      name: r.str("name", 1, { max: 10 }),
      blob: r.vec("blob", 4, { max: 1000 }),
    };
  });
}

const sample: Sample = {
  id: 513,
  stamp: 1_700_000_000_123,
  key: Uint8Array.of(1, 2, 3, 4),
  name: "alice",
  blob: new Uint8Array(300).fill(7),
};

describe("codec", () => {
  it("round-trips with a fixed, big-endian layout", () => {
    const bytes = encodeSample(sample);
    expect(Buffer.from(bytes.subarray(0, 3)).toString("hex")).toBe("010201");
    expect(bytes.length).toBe(1 + 2 + 8 + 4 + 1 + 5 + 4 + 300);
    expect(decodeSample(bytes)).toEqual(sample);
  });

  it("rejects trailing bytes", () => {
    const bytes = Uint8Array.from([...encodeSample(sample), 0]);
    expect(() => decodeSample(bytes)).toThrow(/Sample: 1 trailing bytes/);
  });

  it("rejects truncation and names the field", () => {
    const bytes = encodeSample(sample);
    const err = (() => {
      try {
        decodeSample(bytes.subarray(0, bytes.length - 1));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(DecodeError);
    expect((err as DecodeError).field).toBe("Sample.blob");
  });

  it("rejects an unknown version", () => {
    const bytes = encodeSample(sample);
    bytes[0] = 2;
    expect(() => decodeSample(bytes)).toThrow(UnsupportedVersionError);
  });

  it("rejects a length prefix above the bound, naming the field", () => {
    const bytes = encodeSample({ ...sample, name: "bob" });
    // the name length byte sits at offset 15
    bytes[15] = 11;
    expect(() => decodeSample(bytes)).toThrow(/Sample\.name: length 11 outside \[0, 10\]/);
  });

  it("refuses to encode values that do not fit", () => {
    expect(() => encodeSample({ ...sample, name: "much-too-long" })).toThrow(InvalidInputError);
    expect(() => encodeSample({ ...sample, key: new Uint8Array(3) })).toThrow(/key must be 4 bytes/);
    expect(() => encodeSample({ ...sample, id: 70_000 })).toThrow(/u16 out of range/);
  });

  it("rejects u64 values beyond the safe integer range", () => {
    const bytes = encodeSample(sample);
    bytes.fill(0xff, 3, 11);
    expect(() => decodeSample(bytes)).toThrow(/Sample\.stamp: value too large/);
  });

  it("rejects invalid UTF-8 in strings", () => {
    const bytes = encodeSample({ ...sample, name: "ab" });
    bytes[16] = 0xff;
    expect(() => decodeSample(bytes)).toThrow(/Sample\.name: invalid UTF-8/);
  });
});
