import type { SrvRecord } from "node:dns";
import { describe, expect, it } from "vitest";
import { PeerDiscoveryError } from "../domain/errors.js";
import { PeerResolver } from "./resolver.js";

function dnsError(code: string): Error {
  return Object.assign(new Error(code), { code });
}

describe("PeerResolver", () => {
  it("uses the static map first and never asks DNS for mapped domains", async () => {
    const asked: string[] = [];
    const resolver = new PeerResolver({
      staticPeers: new Map([["b.test", { host: "127.0.0.1", port: 7001 }]]),
      resolveSrv: async (name) => {
        asked.push(name);
        return [];
      },
    });
    expect(await resolver.resolve("b.test")).toEqual({ host: "127.0.0.1", port: 7001 });
    expect(asked).toEqual([]);
  });

  it("picks the SRV record with the lowest priority and highest weight, and caches it", async () => {
    const asked: string[] = [];
    const records: SrvRecord[] = [
      { name: "gw2.b.test", port: 9000, priority: 20, weight: 100 },
      { name: "gw1.b.test.", port: 8443, priority: 10, weight: 5 },
      { name: "gw0.b.test", port: 8444, priority: 10, weight: 50 },
    ];
    const resolver = new PeerResolver({
      staticPeers: new Map(),
      resolveSrv: async (name) => {
        asked.push(name);
        return records;
      },
    });
    expect(await resolver.resolve("b.test")).toEqual({ host: "gw0.b.test", port: 8444 });
    await resolver.resolve("b.test");
    expect(asked).toEqual(["_phoenix-federation._tcp.b.test"]);
  });

  it("falls back to federation.<domain>:8443 without an SRV record; other DNS failures are errors", async () => {
    const none = new PeerResolver({
      staticPeers: new Map(),
      resolveSrv: async () => Promise.reject(dnsError("ENOTFOUND")),
    });
    expect(await none.resolve("c.test")).toEqual({ host: "federation.c.test", port: 8443 });
    const broken = new PeerResolver({
      staticPeers: new Map(),
      resolveSrv: async () => Promise.reject(dnsError("ETIMEOUT")),
    });
    await expect(broken.resolve("c.test")).rejects.toThrow(PeerDiscoveryError);
  });

  it("static-only mode refuses unmapped domains", async () => {
    const resolver = new PeerResolver({ staticPeers: new Map(), staticOnly: true });
    await expect(resolver.resolve("x.test")).rejects.toThrow(/static peer map/);
  });

  it("keeps at most cacheMaxEntries answers and forgets each cacheTtlMs after the lookup", async () => {
    let now = 0;
    const asked: string[] = [];
    const resolver = new PeerResolver({
      staticPeers: new Map(),
      cacheMaxEntries: 2,
      cacheTtlMs: 1_000,
      now: () => now,
      resolveSrv: async (name) => {
        asked.push(name);
        return [{ name: `gw.${name}`, port: 8443, priority: 0, weight: 0 }];
      },
    });
    for (const d of ["a.test", "b.test", "c.test"]) await resolver.resolve(d);
    expect(resolver.cachedAnswers).toBe(2);
    // c and b are cached; a, the least recently used, was dropped and is asked again.
    await resolver.resolve("c.test");
    await resolver.resolve("a.test");
    expect(asked.filter((n) => n.endsWith("a.test"))).toHaveLength(2);
    expect(asked.filter((n) => n.endsWith("c.test"))).toHaveLength(1);
    now += 1_000;
    await resolver.resolve("a.test");
    expect(asked.filter((n) => n.endsWith("a.test"))).toHaveLength(3);
    expect(resolver.cachedAnswers).toBeLessThanOrEqual(2);
  });
});
