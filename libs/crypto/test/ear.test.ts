import { describe, expect, it } from "vitest";
import {
  AEAD_OVERHEAD,
  aeadOpen,
  aeadSeal,
  DecodeError,
  DecryptionError,
  decryptAtRest,
  encryptAtRest,
  generateAeadKey,
  InvalidInputError,
  pad,
  paddedSize,
  UnsupportedVersionError,
  unpad,
  utf8,
} from "../src/index.js";

describe("key-committing AEAD", () => {
  const key = generateAeadKey();
  const pt = utf8("group state");

  it("round-trips and adds a fixed overhead", () => {
    const ct = aeadSeal(key, "GroupState", pt, utf8("group-1"));
    expect(ct.length).toBe(pt.length + AEAD_OVERHEAD);
    expect(aeadOpen(key, "GroupState", ct, utf8("group-1"))).toEqual(pt);
  });

  it("refuses a wrong key through the commitment, before touching GCM", () => {
    const ct = aeadSeal(key, "GroupState", pt);
    expect(() => aeadOpen(generateAeadKey(), "GroupState", ct)).toThrow(/key commitment/);
  });

  it("binds the commitment to the key: the same nonce under another key gives another commitment", () => {
    const nonce = new Uint8Array(32).fill(3);
    const a = aeadSeal(key, "GroupState", pt, undefined, nonce);
    const b = aeadSeal(generateAeadKey(), "GroupState", pt, undefined, nonce);
    expect(a.subarray(33, 65)).not.toEqual(b.subarray(33, 65));
  });

  it("refuses another label, another aad, a flipped bit, truncation and unknown versions", () => {
    const ct = aeadSeal(key, "GroupState", pt, utf8("a"));
    expect(() => aeadOpen(key, "QueueMessage", ct, utf8("a"))).toThrow(DecryptionError);
    expect(() => aeadOpen(key, "GroupState", ct, utf8("b"))).toThrow(DecryptionError);
    for (const at of [1, 40, ct.length - 20, ct.length - 1]) {
      const flipped = ct.slice();
      flipped[at] = (flipped[at] as number) ^ 1;
      expect(() => aeadOpen(key, "GroupState", flipped, utf8("a"))).toThrow(DecryptionError);
    }
    expect(() => aeadOpen(key, "GroupState", ct.subarray(0, 70), utf8("a"))).toThrow(DecodeError);
    const v2 = ct.slice();
    v2[0] = 2;
    expect(() => aeadOpen(key, "GroupState", v2, utf8("a"))).toThrow(UnsupportedVersionError);
  });

  it("rejects keys of the wrong size", () => {
    expect(() => aeadSeal(new Uint8Array(16), "GroupState", pt)).toThrow(InvalidInputError);
  });
});

describe("padding", () => {
  it("pads to the smallest bucket that fits and removes padding exactly", () => {
    const buckets = [16, 64, 256];
    expect(pad(new Uint8Array(0), buckets).length).toBe(16);
    expect(pad(new Uint8Array(12), buckets).length).toBe(16);
    expect(pad(new Uint8Array(13), buckets).length).toBe(64);
    expect(pad(new Uint8Array(300), buckets).length).toBe(512);
    for (const n of [0, 1, 12, 13, 60, 61, 252, 253, 1000]) {
      const content = new Uint8Array(n).fill(0);
      if (n > 0) content[n - 1] = 0; // trailing zeros in content must survive
      expect(unpad(pad(content, buckets))).toEqual(content);
    }
  });

  it("gives equal sizes to contents in one bucket", () => {
    expect(paddedSize(300)).toBe(512);
    expect(paddedSize(500)).toBe(512);
    expect(paddedSize(509)).toBe(1024);
  });

  it("rejects non-zero padding, overlong length prefixes and bad bucket lists", () => {
    const padded = pad(utf8("abc"), [16]);
    const dirty = padded.slice();
    dirty[15] = 1;
    expect(() => unpad(dirty)).toThrow(/Padded\.padding/);
    const long = padded.slice();
    long[3] = 13;
    expect(() => unpad(long)).toThrow(/Padded\.length/);
    expect(() => pad(utf8("abc"), [64, 16])).toThrow(InvalidInputError);
  });
});

describe("encryption at rest", () => {
  const key = generateAeadKey();

  it("hides the exact size inside a bucket and round-trips", () => {
    const a = encryptAtRest(key, "GroupState", new Uint8Array(300).fill(1), { aad: utf8("g") });
    const b = encryptAtRest(key, "GroupState", new Uint8Array(500).fill(1), { aad: utf8("g") });
    expect(a.length).toBe(b.length);
    expect(decryptAtRest(key, "GroupState", a, { aad: utf8("g") })).toEqual(new Uint8Array(300).fill(1));
  });

  it("does not contain the plaintext", () => {
    const secret = utf8("alice@alpha.example is in group 7");
    const ct = encryptAtRest(key, "GroupState", secret);
    expect(Buffer.from(ct).includes(Buffer.from(secret))).toBe(false);
  });

  it("refuses a wrong key and a row swap (other aad)", () => {
    const ct = encryptAtRest(key, "GroupState", utf8("x"), { aad: utf8("row-1") });
    expect(() => decryptAtRest(generateAeadKey(), "GroupState", ct, { aad: utf8("row-1") })).toThrow(
      DecryptionError,
    );
    expect(() => decryptAtRest(key, "GroupState", ct, { aad: utf8("row-2") })).toThrow(DecryptionError);
  });
});
