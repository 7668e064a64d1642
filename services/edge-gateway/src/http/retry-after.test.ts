import { describe, expect, it } from "vitest";
import { retryAfterSeconds } from "./gateway-errors.js";

describe("Retry-After of a refused client", () => {
  it("rounds the wait up to whole seconds, at least 1, and 60 when the bucket never refills", () => {
    expect(retryAfterSeconds(1)).toBe(1);
    expect(retryAfterSeconds(500)).toBe(1);
    expect(retryAfterSeconds(1_001)).toBe(2);
    expect(retryAfterSeconds(Number.POSITIVE_INFINITY)).toBe(60);
  });
});
