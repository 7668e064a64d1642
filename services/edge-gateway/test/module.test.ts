import { Writable } from "node:stream";
import { ConfigError } from "@phoenix/runtime/config";
import { runModule, startModules } from "@phoenix/runtime/module";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_LIMITS, edgeGatewayModule } from "../src/index.js";
import { type FakeUpstream, startFakeUpstream } from "./support/fake-upstreams.js";

function logSink(): Writable {
  return new Writable({ write: (_chunk, _encoding, callback) => callback() });
}

let upstream: FakeUpstream;
beforeAll(async () => {
  upstream = await startFakeUpstream();
});
afterAll(async () => {
  await upstream.close();
});

describe("edgeGatewayModule", () => {
  it("runs as a process from env: serves /readyz from its upstreams, its metrics, and stops on shutdown", async () => {
    const running = await runModule(edgeGatewayModule, {
      env: {
        HTTP_PORT: "0",
        METRICS_PORT: "0",
        AUTH_SERVICE_ADDRESS: upstream.address,
        DELIVERY_SERVICE_ADDRESS: upstream.address,
        QUEUE_SERVICE_ADDRESS: upstream.address,
      },
      signals: false,
      exit: false,
      logDestination: logSink(),
    });
    const url = running.instance.gateway.url;
    expect(running.addresses).toEqual({ http: url });
    expect(running.grpcPort).toBeUndefined();
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({
      upstreams: { auth: "SERVING", delivery: "SERVING", queue: "SERVING" },
    });
    // The per-route metrics land in the process's registry, served on its metrics port.
    const metrics = await (await fetch(running.process.metricsServer.url)).text();
    expect(metrics).toContain('edge_http_requests_total{route="/readyz"');
    expect(await running.process.shutdown()).toBe(0);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });

  it("answers the same probes on its metrics port, and honours SHUTDOWN_DELAY_MS: not ready but still serving, then closed", async () => {
    const running = await runModule(edgeGatewayModule, {
      env: {
        HTTP_PORT: "0",
        METRICS_PORT: "0",
        // Longer than the test: the second shutdown call below cuts it short.
        SHUTDOWN_DELAY_MS: "10m",
        AUTH_SERVICE_ADDRESS: upstream.address,
        DELIVERY_SERVICE_ADDRESS: upstream.address,
        QUEUE_SERVICE_ADDRESS: upstream.address,
      },
      signals: false,
      exit: false,
      logDestination: logSink(),
    });
    const url = running.instance.gateway.url;
    const metricsBase = `http://127.0.0.1:${running.process.metricsServer.port}`;
    const onMetrics = await fetch(`${metricsBase}/readyz`);
    expect(onMetrics.status).toBe(200);
    expect(await onMetrics.json()).toEqual({
      status: "ready",
      upstreams: { auth: "SERVING", delivery: "SERVING", queue: "SERVING" },
    });
    expect(await (await fetch(`${metricsBase}/healthz`)).json()).toEqual({ status: "ok" });

    const finished = running.process.shutdown();
    // During the delay both ports say not ready, and the gateway still answers everything else.
    for (const base of [url, metricsBase]) {
      const draining = await fetch(`${base}/readyz`);
      expect(draining.status).toBe(503);
      expect(await draining.json()).toMatchObject({ status: "not ready", reason: "shutting down" });
    }
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/openapi.json`)).status).toBe(200);
    // A second shutdown (as a second SIGTERM) ends the delay; then the listener closes.
    expect(await running.process.shutdown()).toBe(0);
    expect(await finished).toBe(0);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });

  it("refuses to start without its upstream addresses, naming each", async () => {
    const start = runModule(edgeGatewayModule, {
      env: { HTTP_PORT: "0", METRICS_PORT: "0" },
      signals: false,
      exit: false,
      logDestination: logSink(),
    });
    const error = await start.catch((e: unknown) => e);
    expect((error as Error).cause).toBeInstanceOf(ConfigError);
    expect(((error as Error).cause as ConfigError).issues.map((i) => i.variable)).toEqual([
      "AUTH_SERVICE_ADDRESS",
      "DELIVERY_SERVICE_ADDRESS",
      "QUEUE_SERVICE_ADDRESS",
    ]);
  });

  it("embedded, forwards to the upstream addresses published before it, not env's", async () => {
    const running = await startModules([edgeGatewayModule], {
      env: { HTTP_PORT: "0", AUTH_SERVICE_ADDRESS: "127.0.0.1:1" },
      settings: {
        domain: "edge.example",
        dataDir: "/nonexistent",
        logLevel: "silent",
        shutdownGraceMs: 1000,
        addresses: { auth: upstream.address, delivery: upstream.address, queue: upstream.address },
      },
      logDestination: logSink(),
    });
    const url = running.addresses.http ?? "";
    expect(running.modules["edge-gateway"]?.process.config).toMatchObject({
      SERVICE_NAME: "edge-gateway",
      AUTH_SERVICE_ADDRESS: upstream.address,
      EDGE_RATE_LIMIT_PER_SECOND: 50,
    });
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    await running.stop();
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });

  it("takes its default limits from the config schema", () => {
    expect(DEFAULT_LIMITS).toEqual({
      maxBodyBytes: 1024 * 1024,
      defaultDeadlineMs: 10_000,
      maxDeadlineMs: 60_000,
      rateLimitPerSecond: 50,
      rateLimitBurst: 100,
      heartbeatMs: 30_000,
      upstreamKeepaliveMs: 30_000,
      maxMessageBytes: 4 * 1024 * 1024,
      readinessTimeoutMs: 2000,
    });
  });
});
