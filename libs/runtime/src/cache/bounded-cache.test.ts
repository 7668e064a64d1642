import { describe, expect, it } from "vitest";
import { BoundedCache } from "./bounded-cache.js";

describe("BoundedCache", () => {
  it("evicts the least recently used entry beyond maxEntries", () => {
    const evicted: string[] = [];
    const cache = new BoundedCache<string, number>({
      maxEntries: 2,
      ttlMs: Number.POSITIVE_INFINITY,
      onEvict: (k) => evicted.push(k),
    });
    cache.set("a", 1);
    cache.set("b", 2);
    expect(cache.get("a")).toBe(1); // a is now the most recently used
    cache.set("c", 3);
    expect(cache.get("b")).toBeUndefined();
    expect(cache.get("a")).toBe(1);
    expect(cache.get("c")).toBe(3);
    expect(cache.size).toBe(2);
    expect(evicted).toEqual(["b"]);
  });

  it("forgets entries ttlMs after they were set (injected clock)", () => {
    let now = 1_000;
    const evicted: string[] = [];
    const cache = new BoundedCache<string, number>({
      maxEntries: 10,
      ttlMs: 500,
      now: () => now,
      onEvict: (k) => evicted.push(k),
    });
    cache.set("a", 1);
    now += 499;
    expect(cache.get("a")).toBe(1); // reading does not extend the lifetime
    now += 1;
    expect(cache.get("a")).toBeUndefined();
    expect(cache.size).toBe(0);
    expect(evicted).toEqual(["a"]);
  });

  it("drops expired entries before live ones when full", () => {
    let now = 0;
    const cache = new BoundedCache<string, number>({ maxEntries: 2, ttlMs: 100, now: () => now });
    cache.set("old", 1);
    now = 50;
    cache.set("live", 2);
    now = 120; // "old" expired, "live" not
    cache.get("live");
    cache.set("new", 3);
    expect(cache.values()).toEqual([2, 3]);
  });

  it("a replacing set or delete does not count as an eviction", () => {
    const evicted: string[] = [];
    const cache = new BoundedCache<string, number>({
      maxEntries: 1,
      ttlMs: 1_000,
      onEvict: (k) => evicted.push(k),
    });
    cache.set("a", 1);
    cache.set("a", 2);
    expect(cache.delete("a")).toBe(true);
    expect(evicted).toEqual([]);
    expect(() => new BoundedCache({ maxEntries: 0, ttlMs: 1 })).toThrow(RangeError);
  });
});
