import { randomBytes } from "@phoenix/crypto";
import { describe, expect, it } from "vitest";
import { grantHash, openGrantExpiry, sealGrantExpiry } from "./add-client-grant.js";

describe("add-client grant expiry", () => {
  it("opens only under the grant it was sealed for", () => {
    const grant = randomBytes(32);
    const sealed = sealGrantExpiry(grant, 1_796_000_000_123);
    expect(openGrantExpiry(grant, sealed)).toBe(1_796_000_000_123);
    expect(openGrantExpiry(randomBytes(32), sealed)).toBeUndefined();
    const tampered = sealed.slice();
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
    expect(openGrantExpiry(grant, tampered)).toBeUndefined();
  });

  it("stores a hash that is not the grant", () => {
    const grant = randomBytes(32);
    expect(grantHash(grant)).toHaveLength(32);
    expect(Buffer.from(grantHash(grant)).equals(Buffer.from(grant))).toBe(false);
  });
});
