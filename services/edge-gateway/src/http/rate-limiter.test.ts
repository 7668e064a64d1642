import { describe, expect, it } from "vitest";
import { RateLimiter } from "./rate-limiter.js";

describe("per-key token bucket", () => {
  it("allows the burst, refuses beyond it with a retry time, refills over time", () => {
    let now = 0;
    const limiter = new RateLimiter({ ratePerSecond: 2, burst: 3, now: () => now });
    expect([1, 2, 3].map(() => limiter.take("a").allowed)).toEqual([true, true, true]);
    expect(limiter.take("a")).toEqual({ allowed: false, retryAfterSeconds: 1 });
    expect(limiter.take("b").allowed).toBe(true); // other clients are unaffected
    now += 500; // one token back
    expect(limiter.take("a").allowed).toBe(true);
    expect(limiter.take("a").allowed).toBe(false);
  });

  it("keeps at most maxKeys buckets", () => {
    let now = 0;
    const limiter = new RateLimiter({ ratePerSecond: 1, burst: 1, maxKeys: 10, now: () => now });
    for (let i = 0; i < 100; i++) {
      limiter.take(`ip-${i}`);
      now += 1;
    }
    expect(limiter.size).toBeLessThanOrEqual(10);
  });
});
