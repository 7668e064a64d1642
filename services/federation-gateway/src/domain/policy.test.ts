import { describe, expect, it } from "vitest";
import { PeerRefusedError } from "./errors.js";
import { FederationPolicy, peerRateLimiter } from "./policy.js";

describe("FederationPolicy", () => {
  it("allowlist mode admits only listed domains", () => {
    const policy = new FederationPolicy({ mode: "allowlist", allowed: ["b.test"], denied: [] });
    expect(() => policy.check("b.test")).not.toThrow();
    expect(() => policy.check("c.test")).toThrow(PeerRefusedError);
    expect(policy.refusal("c.test")).toBe("not on the allowlist");
  });

  it("open mode admits everyone but the denylist, and the denylist wins over the allowlist", () => {
    const open = new FederationPolicy({ mode: "open", allowed: [], denied: ["evil.test"] });
    expect(open.refusal("anyone.test")).toBeUndefined();
    expect(() => open.check("evil.test")).toThrow(/denylisted/);
    const both = new FederationPolicy({ mode: "allowlist", allowed: ["x.test"], denied: ["x.test"] });
    expect(both.refusal("x.test")).toBe("denylisted");
  });

  it("decides by the policy put in force last", () => {
    const policy = new FederationPolicy({ mode: "allowlist", allowed: ["b.test"], denied: [] });
    policy.replace({ mode: "allowlist", allowed: [], denied: ["b.test"] });
    expect(policy.refusal("b.test")).toBe("denylisted");
    policy.replace({ mode: "open", allowed: [], denied: [] });
    expect(policy.refusal("b.test")).toBeUndefined();
    expect(policy.current.mode).toBe("open");
  });
});

describe("peerRateLimiter", () => {
  it("allows a burst, refuses beyond it, and refills at the configured rate per peer", () => {
    let now = 1_000_000;
    const limiter = peerRateLimiter({ ratePerSecond: 2, burst: 3 }, () => now);
    for (let i = 0; i < 3; i++) expect(limiter.take("b.test")).toBe(0);
    expect(limiter.take("b.test")).toBeGreaterThan(0);
    // Another peer has its own bucket.
    expect(limiter.take("c.test")).toBe(0);
    now += 500; // one token back at 2/s
    expect(limiter.take("b.test")).toBe(0);
    expect(limiter.take("b.test")).toBeGreaterThan(0);
    now += 60_000; // refills to the burst, not beyond
    for (let i = 0; i < 3; i++) expect(limiter.take("b.test")).toBe(0);
    expect(limiter.take("b.test")).toBeGreaterThan(0);
  });
});
