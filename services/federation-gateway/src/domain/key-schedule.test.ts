import { describe, expect, it } from "vitest";
import { activeKey, newKeyValidity, type OwnKey, publishedKeys, rotationDue } from "./key-schedule.js";

const config = { rotationMs: 1000, overlapMs: 500 };
const key = (id: number, created: number): OwnKey => ({
  keyId: new Uint8Array([id]),
  publicKey: new Uint8Array(32),
  ...newKeyValidity(created, config),
});

describe("key schedule", () => {
  it("needs a first key, then rotates after the rotation interval", () => {
    expect(rotationDue([], 0, config)).toBe(true);
    const first = key(1, 0);
    expect(rotationDue([first], 999, config)).toBe(false);
    expect(rotationDue([first], 1000, config)).toBe(true);
  });

  it("the newest key signs while the retired one stays published for the overlap", () => {
    const keys = [key(1, 0), key(2, 1000)];
    expect(activeKey(keys, 1200)?.keyId).toEqual(new Uint8Array([2]));
    expect(publishedKeys(keys, 1200).map((k) => k.keyId[0])).toEqual([1, 2]);
    // Key 1 expires at 0 + 1000 + 500.
    expect(publishedKeys(keys, 1500).map((k) => k.keyId[0])).toEqual([2]);
  });
});
