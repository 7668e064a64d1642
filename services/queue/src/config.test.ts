import { loadConfig } from "@phoenix/runtime/config";
import { describe, expect, it } from "vitest";
import { queueConfigSchema } from "./config.js";

describe("QS configuration", () => {
  it("holds QS_DOMAIN to the domain rule of ids", () => {
    for (const good of ["example.org", "localhost", "a-b.c"]) {
      expect(loadConfig(queueConfigSchema, { QS_DOMAIN: good }).QS_DOMAIN).toBe(good);
    }
    // The old pattern ([a-z0-9.-]{1,253}) let the first three through.
    for (const bad of ["a..b", "-a.b", `${"a".repeat(64)}.example`, "Example.org"]) {
      expect(() => loadConfig(queueConfigSchema, { QS_DOMAIN: bad }), bad).toThrow(
        `QS_DOMAIN: ${JSON.stringify(bad)} is not a lower-case DNS name`,
      );
    }
  });
});
