import { HpkeKeyPair, hpkeKeyId, SigningKey, sealQueueConfig } from "@phoenix/crypto";
import { describe, expect, it } from "vitest";
import type { ConfigKey } from "./key-ring.js";
import { type OpenResult, QueueConfigOpener } from "./queue-config-opener.js";

const qs = HpkeKeyPair.generate();
const configKey: ConfigKey = {
  keyId: hpkeKeyId(qs.publicKey),
  pair: qs,
  notBefore: new Date(0),
  notAfter: null,
};

function client() {
  const clientRecordId = crypto.getRandomValues(new Uint8Array(16));
  const recordKey = SigningKey.generate();
  const sealed = sealQueueConfig({ qsKey: qs.publicKey, domain: "qs.example", clientRecordId, recordKey });
  return { clientRecordId, authKey: recordKey.verifyingKey.bytes, sealed };
}

/** An opener with a hand-driven clock and a count of key lookups (each uncached open does one). */
function opener(limits: { maxEntries?: number; maxIdleMs?: number } = {}) {
  let now = 1_000_000;
  let lookups = 0;
  const o = new QueueConfigOpener({ ...limits, now: () => now });
  const keyOf = () => {
    lookups++;
    return configKey;
  };
  return {
    open: (sealed: Uint8Array, keys: readonly Uint8Array[] | undefined): OpenResult =>
      o.open(sealed, keyOf, () => keys),
    advance: (ms: number) => {
      now += ms;
    },
    lookups: () => lookups,
    size: () => o.size,
  };
}

describe("queue config opener cache", () => {
  it("opens a config once, then answers from the cache while the verifying key holds", () => {
    const c = client();
    const o = opener();
    expect(o.open(c.sealed, [c.authKey])).toEqual({ kind: "open", clientId: c.clientRecordId });
    expect(o.open(c.sealed, [c.authKey])).toEqual({ kind: "open", clientId: c.clientRecordId });
    expect(o.lookups()).toBe(1);
    // The record's keys are not known yet: the cached client id comes back without a check.
    expect(o.open(c.sealed, undefined)).toEqual({ kind: "needs-key", clientId: c.clientRecordId });
    // The auth key changed and the old one is out of its grace period: opened again, refused.
    expect(o.open(c.sealed, [SigningKey.generate().verifyingKey.bytes])).toEqual({ kind: "invalid" });
    expect(o.lookups()).toBe(2);
    expect(o.size()).toBe(0);
  });

  it("forgets configs idle for longer than the limit", () => {
    const [a, b] = [client(), client()];
    const o = opener({ maxIdleMs: 60_000 });
    o.open(a.sealed, [a.authKey]);
    o.advance(40_000);
    o.open(b.sealed, [b.authKey]);
    o.advance(30_000);
    // a was last used 70 s ago: gone; b (30 s) stays.
    expect(o.open(b.sealed, [b.authKey]).kind).toBe("open");
    expect(o.size()).toBe(1);
    expect(o.lookups()).toBe(2);
    expect(o.open(a.sealed, [a.authKey]).kind).toBe("open");
    expect(o.lookups()).toBe(3);
  });

  it("keeps at most maxEntries configs, dropping the least recently used", () => {
    const [a, b, c] = [client(), client(), client()];
    const o = opener({ maxEntries: 2 });
    o.open(a.sealed, [a.authKey]);
    o.open(b.sealed, [b.authKey]);
    o.open(a.sealed, [a.authKey]);
    o.open(c.sealed, [c.authKey]);
    expect(o.size()).toBe(2);
    const before = o.lookups();
    o.open(a.sealed, [a.authKey]);
    o.open(c.sealed, [c.authKey]);
    expect(o.lookups()).toBe(before);
    o.open(b.sealed, [b.authKey]);
    expect(o.lookups()).toBe(before + 1);
  });

  it("never answers from the cache for other bytes", () => {
    const c = client();
    const o = opener();
    o.open(c.sealed, [c.authKey]);
    const flipped = c.sealed.slice();
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] as number) ^ 1;
    expect(o.open(flipped, [c.authKey])).toEqual({ kind: "invalid" });
  });
});
