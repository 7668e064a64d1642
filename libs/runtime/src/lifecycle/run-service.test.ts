import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { envString, serviceConfig } from "../config/index.js";
import { runService, ServiceStartError } from "./run-service.js";

const testConfig = serviceConfig({ serviceName: "lifecycle-test" }).extend({
  GREETING: envString({ default: "hi" }),
});
const baseEnv = { GRPC_PORT: "0", METRICS_PORT: "0", SHUTDOWN_GRACE_MS: "1s" };

function logSink() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString("utf8").split("\n")) if (line) lines.push(JSON.parse(line));
      callback();
    },
  });
  return { lines, destination };
}

describe("runService", () => {
  it("starts, then shuts down closing resources in reverse order", async () => {
    const closed: string[] = [];
    const exits: number[] = [];
    const { lines, destination } = logSink();
    const service = await runService({
      config: testConfig,
      env: { ...baseEnv, GREETING: "hello" },
      signals: false,
      exit: (code) => exits.push(code),
      logDestination: destination,
      setup({ config, onShutdown }) {
        expect(config.GREETING).toBe("hello");
        onShutdown({ close: () => void closed.push("database") }, "database");
        onShutdown(() => void closed.push("relay"), "relay");
        return { services: [] };
      },
    });
    expect(service.grpcPort).toBeGreaterThan(0);
    expect(service.metricsServer.port).toBeGreaterThan(0);
    expect(await service.shutdown("test")).toBe(0);
    expect(await service.finished).toBe(0);
    expect(closed).toEqual(["relay", "database"]);
    expect(exits).toEqual([0]);
    expect(lines.map((l) => l.msg)).toContain("shutdown complete");
    // The endpoints are gone.
    await expect(fetch(service.metricsServer.url)).rejects.toThrow();
  });

  it("reports a resource that fails to close with exit code 1, after closing the others", async () => {
    const closed: string[] = [];
    const service = await runService({
      config: testConfig,
      env: baseEnv,
      signals: false,
      exit: false,
      logDestination: logSink().destination,
      setup({ onShutdown }) {
        onShutdown({ close: () => void closed.push("database") }, "database");
        onShutdown({ close: () => Promise.reject(new Error("bus already gone")) }, "bus");
        return { services: [] };
      },
    });
    expect(await service.shutdown()).toBe(1);
    expect(closed).toEqual(["database"]);
  });

  it("releases what setup opened when setup fails, and exits 1", async () => {
    const closed: string[] = [];
    const exits: number[] = [];
    const { lines, destination } = logSink();
    const start = runService({
      config: testConfig,
      env: baseEnv,
      signals: false,
      exit: (code) => exits.push(code),
      logDestination: destination,
      setup({ onShutdown }) {
        onShutdown({ close: () => void closed.push("database") }, "database");
        throw new Error("migrations failed");
      },
    });
    await expect(start).rejects.toBeInstanceOf(ServiceStartError);
    expect(closed).toEqual(["database"]);
    expect(exits).toEqual([1]);
    expect(lines.find((l) => l.level === "fatal")?.msg).toBe("service failed to start");
  });

  it("exits 1 with every bad variable named when the config is invalid", async () => {
    const exits: number[] = [];
    const { lines, destination } = logSink();
    const start = runService({
      config: testConfig,
      env: { ...baseEnv, GRPC_PORT: "-1", LOG_LEVEL: "chatty" },
      signals: false,
      exit: (code) => exits.push(code),
      logDestination: destination,
      setup: () => ({ services: [] }),
    });
    await expect(start).rejects.toBeInstanceOf(ServiceStartError);
    expect(exits).toEqual([1]);
    const fatal = lines.find((l) => l.level === "fatal");
    expect(fatal?.issues).toEqual([
      { variable: "LOG_LEVEL", reason: "must be one of fatal, error, warn, info, debug, trace, silent" },
      { variable: "GRPC_PORT", reason: "must be at least 0" },
    ]);
  });

  it("refuses a config schema that does not extend the base", async () => {
    const { z } = await import("zod");
    await expect(
      runService({
        config: z.object({ GREETING: envString({ default: "hi" }) }),
        env: baseEnv,
        signals: false,
        exit: false,
        logDestination: logSink().destination,
        setup: () => ({ services: [] }),
      }),
    ).rejects.toThrow(/must extend serviceConfig\(\); it lacks SERVICE_NAME/);
  });
});
