import { loadConfig } from "@phoenix/runtime/config";
import { describe, expect, it } from "vitest";
import { gatewayConfigSchema } from "./config.js";

const KEY = "cd".repeat(32);

describe("gateway configuration", () => {
  it("holds FEDERATION_DOMAIN to the domain rule of ids", () => {
    for (const good of ["example.org", "localhost", "a-b.c"]) {
      const config = loadConfig(gatewayConfigSchema, {
        FEDERATION_DOMAIN: good,
        FEDERATION_KEY_ENCRYPTION_KEY: KEY,
      });
      expect(config.FEDERATION_DOMAIN).toBe(good);
    }
    // The old pattern ([a-z0-9.-]{1,253}) let the first three through.
    for (const bad of ["a..b", "-a.b", `${"a".repeat(64)}.example`, "Example.org"]) {
      expect(
        () => loadConfig(gatewayConfigSchema, { FEDERATION_DOMAIN: bad, FEDERATION_KEY_ENCRYPTION_KEY: KEY }),
        bad,
      ).toThrow(`FEDERATION_DOMAIN: ${JSON.stringify(bad)} is not a lower-case DNS name`);
    }
  });
});
