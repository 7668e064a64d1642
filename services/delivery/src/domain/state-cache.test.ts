import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { GroupStateCache } from "./state-cache.js";

/** A stand-in for DsGroup: forks are distinct objects. */
class State {
  constructor(readonly name: string) {}
  fork(): State {
    return new State(this.name);
  }
}

const id = () => new Uint8Array(randomBytes(16));
const tag = () => new Uint8Array(randomBytes(16));

function cache(
  limits: Partial<{ maxEntries: number; maxBytes: number; idleMs: number }> = {},
  now = () => 0,
) {
  return new GroupStateCache<State>({ maxEntries: 10, maxBytes: 1000, idleMs: 1000, ...limits }, now);
}

describe("GroupStateCache", () => {
  it("serves a state only to the key it was opened with, and only for its state tag", () => {
    const c = cache();
    const group = id();
    const key = new Uint8Array(randomBytes(32));
    const stored = tag();
    c.set(group, stored, c.keyTag(key), new State("a"), 10);
    expect(c.lookup(group, c.keyTag(new Uint8Array(randomBytes(32))))).toBeUndefined();
    const hit = c.lookup(group, c.keyTag(key));
    expect(hit?.base.name).toBe("a");
    expect(GroupStateCache.matches(hit, stored)).toBe(true);
    expect(GroupStateCache.matches(hit, tag())).toBe(false);
    // Another process's tags differ: the per-process key is random.
    expect(cache().keyTag(key)).not.toEqual(c.keyTag(key));
  });

  it("never caches a row without a tag, a state over the byte limit, or when turned off", () => {
    const key = new Uint8Array(32);
    const c = cache({ maxBytes: 100 });
    c.set(id(), new Uint8Array(0), c.keyTag(key), new State("untagged"), 10);
    c.set(id(), tag(), c.keyTag(key), new State("big"), 101);
    expect(c.size).toBe(0);
    for (const off of [{ maxEntries: 0 }, { maxBytes: 0 }, { idleMs: 0 }]) {
      const disabled = cache(off);
      disabled.set(id(), tag(), disabled.keyTag(key), new State("x"), 1);
      expect(disabled.size).toBe(0);
    }
  });

  it("evicts the least recently used beyond its entry and byte bounds", () => {
    const key = new Uint8Array(32);
    const c = cache({ maxEntries: 2, maxBytes: 100 });
    const [a, b, d] = [id(), id(), id()];
    c.set(a, tag(), c.keyTag(key), new State("a"), 40);
    c.set(b, tag(), c.keyTag(key), new State("b"), 40);
    const hitA = c.lookup(a, c.keyTag(key));
    if (hitA !== undefined) c.touch(a, hitA);
    c.set(d, tag(), c.keyTag(key), new State("d"), 10);
    expect(c.lookup(b, c.keyTag(key))).toBeUndefined();
    expect(c.size).toBe(2);
    // 40 + 10 + 60 > 100: the least recently used (a) goes.
    c.set(b, tag(), c.keyTag(key), new State("b2"), 60);
    expect(c.lookup(a, c.keyTag(key))).toBeUndefined();
    expect(c.heldBytes).toBe(70);
    c.delete(b);
    expect(c.heldBytes).toBe(10);
  });

  it("forgets entries idle for idleMs, on lookup and by sweep", () => {
    let now = 0;
    const key = new Uint8Array(32);
    const c = cache({ idleMs: 1000 }, () => now);
    const [a, b] = [id(), id()];
    c.set(a, tag(), c.keyTag(key), new State("a"), 1);
    c.set(b, tag(), c.keyTag(key), new State("b"), 1);
    now = 900;
    const hit = c.lookup(a, c.keyTag(key));
    if (hit !== undefined) c.touch(a, hit);
    now = 1000;
    expect(c.lookup(b, c.keyTag(key))).toBeUndefined();
    expect(c.size).toBe(1);
    now = 1900;
    expect(c.sweep()).toBe(1);
    expect(c.size).toBe(0);
    expect(c.heldBytes).toBe(0);
    c.close();
  });
});
