import { describe, expect, it } from "vitest";
import {
  aesGcmOpen,
  aesGcmSeal,
  DecryptionError,
  fromHex,
  InvalidInputError,
  KeyCache,
  toHex,
  utf8,
} from "../src/index.js";

// Test cases 2 and 14 of "The Galois/Counter Mode of Operation (GCM)" (McGrew, Viega): all-zero
// key, nonce and one all-zero block, for AES-128 and AES-256.
const GCM_CASES = [
  { key: "00".repeat(16), ct: "0388dace60b6a392f328c2b971b2fe78", tag: "ab6e47d42cec13bdf53a67b21257bddf" },
  { key: "00".repeat(32), ct: "cea7403d4d606b6e074ec5d3baf39d18", tag: "d0d1c8a799996bf0265b98b5d48ab919" },
];

describe("raw AES-GCM", () => {
  const nonce = new Uint8Array(12);
  const block = new Uint8Array(16);

  for (const c of GCM_CASES) {
    it(`reproduces the published ${c.key.length * 4}-bit vector and opens it`, () => {
      const sealed = aesGcmSeal(fromHex(c.key), nonce, new Uint8Array(0), block);
      expect(toHex(sealed)).toBe(c.ct + c.tag);
      expect(aesGcmOpen(fromHex(c.key), nonce, new Uint8Array(0), sealed)).toEqual(block);
    });
  }

  it("refuses another nonce, AAD, key or a flipped bit with DecryptionError", () => {
    const key = new Uint8Array(16).fill(7);
    const sealed = aesGcmSeal(key, nonce, utf8("aad"), utf8("secret"));
    expect(aesGcmOpen(key, nonce, utf8("aad"), sealed)).toEqual(utf8("secret"));
    expect(() => aesGcmOpen(key, new Uint8Array(12).fill(1), utf8("aad"), sealed)).toThrow(DecryptionError);
    expect(() => aesGcmOpen(key, nonce, utf8("other"), sealed)).toThrow(DecryptionError);
    expect(() => aesGcmOpen(new Uint8Array(16), nonce, utf8("aad"), sealed)).toThrow(DecryptionError);
    const flipped = sealed.slice();
    flipped[0] = (flipped[0] as number) ^ 1;
    expect(() => aesGcmOpen(key, nonce, utf8("aad"), flipped)).toThrow(DecryptionError);
    expect(() => aesGcmOpen(key, nonce, utf8("aad"), sealed.subarray(0, 15))).toThrow(DecryptionError);
  });

  it("refuses keys and nonces of the wrong size with InvalidInputError", () => {
    expect(() => aesGcmSeal(new Uint8Array(24), nonce, new Uint8Array(0), block)).toThrow(InvalidInputError);
    expect(() => aesGcmSeal(new Uint8Array(16), new Uint8Array(8), new Uint8Array(0), block)).toThrow(
      InvalidInputError,
    );
    expect(() => aesGcmOpen(new Uint8Array(16), new Uint8Array(16), new Uint8Array(0), block)).toThrow(
      InvalidInputError,
    );
  });
});

describe("KeyCache", () => {
  it("imports a key once, keeps recently used keys and drops the least recently used", () => {
    const cache = new KeyCache<string>(2);
    let imports = 0;
    const make = (name: string) => () => {
      imports++;
      return name;
    };
    const a = utf8("a");
    const b = utf8("b");
    expect(cache.getOrCreate(a, make("A"))).toBe("A");
    expect(cache.getOrCreate(b, make("B"))).toBe("B");
    expect(cache.getOrCreate(utf8("a"), make("A again"))).toBe("A");
    expect(imports).toBe(2);
    cache.getOrCreate(utf8("c"), make("C"));
    expect(cache.size).toBe(2);
    // b was the least recently used; a was refreshed by the hit above.
    expect(cache.getOrCreate(a, make("A again"))).toBe("A");
    expect(cache.getOrCreate(b, make("B again"))).toBe("B again");
  });

  it("caches nothing when the import throws and refuses a non-positive capacity", () => {
    const cache = new KeyCache<string>(4);
    expect(() =>
      cache.getOrCreate(utf8("bad"), () => {
        throw new InvalidInputError("bad key");
      }),
    ).toThrow(InvalidInputError);
    expect(cache.size).toBe(0);
    expect(() => new KeyCache<string>(0)).toThrow(InvalidInputError);
  });
});
