import { ConfigError, loadConfig } from "@phoenix/runtime/config";
import { describe, expect, it } from "vitest";
import { DEFAULT_STATE_BUCKETS, deliveryConfigSchema, paddingBuckets } from "./config.js";

const KEY = "ab".repeat(32);

describe("DS configuration", () => {
  it("needs only DS_DOMAIN and DS_REPLAY_MARKER_KEY and defaults the rest", () => {
    const config = loadConfig(deliveryConfigSchema, {
      DS_DOMAIN: "alpha.example",
      DS_REPLAY_MARKER_KEY: KEY,
    });
    expect(config.GRPC_PORT).toBe(50052);
    expect(config.DS_FANOUT_SUBJECT).toBe("phoenix.fanout");
    expect(config.DS_CLIENT_INACTIVITY).toBe(90 * 86_400_000);
    expect(config.DS_RELAY_START_DELAY).toBe(0);
    expect(paddingBuckets(config)).toEqual(DEFAULT_STATE_BUCKETS);
  });

  it("holds DS_DOMAIN to the domain rule of ids", () => {
    for (const good of ["example.org", "localhost", "a-b.c"]) {
      expect(loadConfig(deliveryConfigSchema, { DS_DOMAIN: good, DS_REPLAY_MARKER_KEY: KEY }).DS_DOMAIN).toBe(
        good,
      );
    }
    // The old pattern ([a-z0-9.-]{1,253}) let the first three through.
    for (const bad of ["a..b", "-a.b", `${"a".repeat(64)}.example`, "Alpha.example"]) {
      expect(
        () => loadConfig(deliveryConfigSchema, { DS_DOMAIN: bad, DS_REPLAY_MARKER_KEY: KEY }),
        bad,
      ).toThrow(`DS_DOMAIN: ${JSON.stringify(bad)} is not a lower-case DNS name`);
    }
  });

  it("parses buckets and durations, and names every bad variable", () => {
    const config = loadConfig(deliveryConfigSchema, {
      DS_DOMAIN: "alpha.example",
      DS_REPLAY_MARKER_KEY: KEY,
      DS_PADDING_BUCKETS: "4096, 1024",
      DS_SWEEP_INTERVAL: "0",
      DS_RELAY_START_DELAY: "1h",
    });
    expect(paddingBuckets(config)).toEqual([1024, 4096]);
    expect(config.DS_SWEEP_INTERVAL).toBe(0);
    expect(config.DS_RELAY_START_DELAY).toBe(3_600_000);

    let error: unknown;
    try {
      loadConfig(deliveryConfigSchema, {
        DS_PADDING_BUCKETS: "1024,-5",
        DS_FANOUT_SUBJECT: "phoenix.*",
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues.map((i) => i.variable).sort()).toEqual([
      "DS_DOMAIN",
      "DS_FANOUT_SUBJECT",
      "DS_PADDING_BUCKETS",
      "DS_REPLAY_MARKER_KEY",
    ]);
  });
});
