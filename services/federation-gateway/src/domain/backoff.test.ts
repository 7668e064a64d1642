import { describe, expect, it } from "vitest";
import { backoffDelay } from "./backoff.js";

describe("backoffDelay", () => {
  const config = { initialMs: 100, maxMs: 5000, jitter: 0 };

  it("doubles per failure up to the cap", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 100].map((n) => backoffDelay(n, config))).toEqual([
      100, 200, 400, 800, 1600, 3200, 5000, 5000,
    ]);
  });

  it("jitter only shortens the wait, never below (1 - jitter) of it", () => {
    const jittered = { ...config, jitter: 0.5 };
    expect(backoffDelay(3, jittered, () => 0)).toBe(400);
    expect(backoffDelay(3, jittered, () => 0.999_999)).toBe(200);
  });
});
