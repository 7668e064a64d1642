import { describe, expect, it } from "vitest";
import { z } from "zod";
import { baseConfigSchema, serviceConfig } from "./base-config.js";
import {
  DOMAIN_RULE,
  envBool,
  envBytes,
  envDomain,
  envDuration,
  envInt,
  envList,
  envUrl,
  FQDN_RULE,
} from "./fields.js";
import { ConfigError, loadConfig } from "./load-config.js";

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

describe("loadConfig", () => {
  it("applies the base defaults: loopback host, 4 MiB messages, 30 s deadline", () => {
    const config = loadConfig(serviceConfig({ serviceName: "echo", grpcPort: 50099 }), {});
    expect(config).toMatchObject({
      SERVICE_NAME: "echo",
      LOG_LEVEL: "info",
      GRPC_HOST: "127.0.0.1",
      GRPC_PORT: 50099,
      METRICS_HOST: "127.0.0.1",
      GRPC_MAX_MESSAGE_BYTES: 4 * 1024 * 1024,
      GRPC_DEFAULT_DEADLINE_MS: 30_000,
      SHUTDOWN_GRACE_MS: 10_000,
    });
  });

  it("parses units and treats empty values as unset", () => {
    const config = loadConfig(serviceConfig({ serviceName: "echo" }), {
      GRPC_PORT: "0",
      GRPC_MAX_MESSAGE_BYTES: "64KiB",
      GRPC_DEFAULT_DEADLINE_MS: "2s",
      SHUTDOWN_GRACE_MS: " 1500 ",
      LOG_LEVEL: "",
    });
    expect(config.GRPC_PORT).toBe(0);
    expect(config.GRPC_MAX_MESSAGE_BYTES).toBe(65536);
    expect(config.GRPC_DEFAULT_DEADLINE_MS).toBe(2000);
    expect(config.SHUTDOWN_GRACE_MS).toBe(1500);
    expect(config.LOG_LEVEL).toBe("info");
  });

  it("names every bad variable with its reason and never echoes values", () => {
    const schema = baseConfigSchema.extend({
      UPSTREAM_URL: envUrl(),
      WORKERS: envInt({ min: 1, max: 64 }),
      VERBOSE: envBool({ optional: true }),
    });
    const error = configError(() =>
      loadConfig(schema, {
        GRPC_PORT: "abc",
        METRICS_PORT: "70000",
        LOG_LEVEL: "loud",
        UPSTREAM_URL: "not a url s3cr3t",
        WORKERS: "0",
        VERBOSE: "maybe",
        GRPC_DEFAULT_DEADLINE_MS: "soon",
      }),
    );
    expect(Object.fromEntries(error.issues.map((i) => [i.variable, i.reason]))).toEqual({
      SERVICE_NAME: "missing",
      GRPC_PORT: "not an integer",
      METRICS_PORT: "must be at most 65535",
      LOG_LEVEL: "must be one of fatal, error, warn, info, debug, trace, silent",
      UPSTREAM_URL: "not a URL",
      WORKERS: "must be at least 1",
      VERBOSE: "not a boolean (use true/false)",
      GRPC_DEFAULT_DEADLINE_MS: "not a duration (e.g. 1500, 1500ms, 30s, 2m, 90d)",
    });
    expect(error.message).toContain("8 bad environment variables");
    expect(error.message).toContain("  UPSTREAM_URL: not a URL");
    expect(error.message).not.toContain("s3cr3t");
    expect(error.name).toBe("ConfigError");
  });

  it("reports plain zod fields by env name too", () => {
    const schema = z.object({ RATIO: z.coerce.number(), MODE: z.enum(["a", "b"]), TOKEN: z.string().min(8) });
    const error = configError(() => loadConfig(schema, { RATIO: "x", TOKEN: "short" }));
    expect(error.issues).toEqual([
      { variable: "RATIO", reason: "not a number" },
      { variable: "MODE", reason: "missing" },
      { variable: "TOKEN", reason: "must be at least 8" },
    ]);
  });

  it("supports optional fields, defaults, lists, sizes and durations", () => {
    const schema = z.object({
      A: envInt({ optional: true }),
      B: envList({ default: ["x"] }),
      C: envList(),
      D: envBytes({ max: 1024 }),
      E: envDuration({ default: 5 }),
    });
    expect(loadConfig(schema, { C: "a, b,,c", D: "1KiB" })).toEqual({
      A: undefined,
      B: ["x"],
      C: ["a", "b", "c"],
      D: 1024,
      E: 5,
    });
    expect(configError(() => loadConfig(schema, { C: "a", D: "2KiB" })).issues).toEqual([
      { variable: "D", reason: "must be at most 1024 bytes" },
    ]);
  });

  it("reads durations with units up to days", () => {
    const schema = z.object({ T: envDuration() });
    expect(loadConfig(schema, { T: "90d" }).T).toBe(90 * 86_400_000);
    expect(loadConfig(schema, { T: "1.5h" }).T).toBe(5_400_000);
    expect(loadConfig(schema, { T: "250" }).T).toBe(250);
    expect(configError(() => loadConfig(schema, { T: "3w" })).issues).toEqual([
      { variable: "T", reason: "not a duration (e.g. 1500, 1500ms, 30s, 2m, 90d)" },
    ]);
  });

  it("holds domains to the rule of ids and names the variable and the bad value", () => {
    const schema = z.object({ D: envDomain(), H: envDomain({ default: "localhost" }) });
    for (const good of ["example.org", "localhost", "a-b.c", `${"a".repeat(63)}.test`]) {
      expect(loadConfig(schema, { D: good }).D).toBe(good);
    }
    expect(loadConfig(schema, { D: "example.org" }).H).toBe("localhost");
    for (const bad of ["a..b", "-a.b", "a-.b", `${"a".repeat(64)}.test`, "Example.org", "a_b.c", "a.b."]) {
      const error = configError(() => loadConfig(schema, { D: bad }));
      expect(error.issues).toEqual([
        { variable: "D", reason: `${JSON.stringify(bad)} is not ${DOMAIN_RULE}` },
      ]);
      expect(error.message).toContain(`D: "${bad}" is not a lower-case DNS name`);
    }
    expect(configError(() => loadConfig(schema, {})).issues).toEqual([{ variable: "D", reason: "missing" }]);
  });

  it("requires a fully qualified homeserver domain, except localhost", () => {
    const schema = z.object({ D: envDomain() });
    for (const good of ["localhost", "e2e.test", "a.test", "chat.example.org"]) {
      expect(loadConfig(schema, { D: good }).D).toBe(good);
    }
    for (const bad of ["example", "test", "localhost2"]) {
      const error = configError(() => loadConfig(schema, { D: bad }));
      expect(error.issues).toEqual([{ variable: "D", reason: `${JSON.stringify(bad)} is not ${FQDN_RULE}` }]);
      expect(error.message).toContain(`D: "${bad}" is not a fully qualified domain name`);
    }
  });

  it("reads process.env by default", () => {
    const schema = z.object({ PATH: envList() });
    expect(loadConfig(schema).PATH).toBeInstanceOf(Array);
  });
});
