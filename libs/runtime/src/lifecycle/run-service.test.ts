import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
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

  it("runs without a gRPC server: setup's own listener serves until shutdown closes it", async () => {
    // GRPC_PORT names a port that is taken: a gRPC server would fail to bind it.
    const taken = await listen(createServer());
    const grpcPort = String((taken.address() as AddressInfo).port);
    const closed: string[] = [];
    const exits: number[] = [];
    const { lines, destination } = logSink();
    let url = "";
    try {
      const service = await runService({
        config: testConfig,
        env: { ...baseEnv, GRPC_PORT: grpcPort },
        grpc: false,
        signals: false,
        exit: (code) => exits.push(code),
        logDestination: destination,
        async setup({ config, onShutdown }) {
          onShutdown({ close: () => void closed.push("database") }, "database");
          const http = await listen(createServer((_req, res) => res.end(config.GREETING)));
          onShutdown(
            () =>
              new Promise<void>((resolve) => {
                closed.push("http");
                http.close(() => resolve());
              }),
            "http listener",
          );
          onShutdown(() => void closed.push("started last"), "started last");
          url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/`;
        },
      });
      expect("grpc" in service).toBe(false);
      // @ts-expect-error: a service run without gRPC has no gRPC port.
      expect(service.grpcPort).toBeUndefined();
      expect(await (await fetch(url)).text()).toBe("hi");
      expect((await fetch(service.metricsServer.url)).status).toBe(200);
      expect(lines.map((l) => l.msg)).not.toContain("grpc server listening");

      expect(await service.shutdown("test")).toBe(0);
      expect(await service.finished).toBe(0);
      expect(closed).toEqual(["started last", "http", "database"]);
      expect(exits).toEqual([0]);
      await expect(fetch(url)).rejects.toThrow();
      await expect(fetch(service.metricsServer.url)).rejects.toThrow();
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  });

  it("refuses to start without gRPC when setup returns services to serve", async () => {
    const closed: string[] = [];
    const exits: number[] = [];
    const start = runService({
      config: testConfig,
      env: baseEnv,
      grpc: false,
      signals: false,
      exit: (code) => exits.push(code),
      logDestination: logSink().destination,
      // @ts-expect-error: the compiler refuses it too; the runtime check catches untyped callers.
      setup({ onShutdown }) {
        onShutdown({ close: () => void closed.push("database") }, "database");
        return { services: [{} as never] };
      },
    });
    await expect(start).rejects.toThrow(/returned gRPC services.*grpc: false/);
    expect(closed).toEqual(["database"]);
    expect(exits).toEqual([1]);
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

function listen(server: Server): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}
