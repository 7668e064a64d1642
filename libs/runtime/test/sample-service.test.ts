import { randomBytes } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { INTERNAL_ERROR_MESSAGE } from "@phoenix/runtime/errors";
import { createChannel, createServiceClient } from "@phoenix/runtime/grpc";
import { callFailure, eventually, ServiceProcess } from "@phoenix/runtime/testing";
import { afterEach, describe, expect, it } from "vitest";
import { ECHO_SERVICE_NAME, EchoServiceDefinition, echoRequest } from "./fixtures/echo-contract.js";
import { healthCheck, reflectedServices, sampleValue, scrape } from "./support/probes.js";

const SCRIPT = "libs/runtime/test/fixtures/echo-service.ts";
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startSample(env: Record<string, string> = {}) {
  const marker = join(tmpdir(), `echo-close-${randomBytes(6).toString("hex")}.log`);
  const proc = ServiceProcess.spawn({
    name: "echo",
    entry: SCRIPT,
    env: { GRPC_PORT: "0", METRICS_PORT: "0", LOG_LEVEL: "debug", ECHO_CLOSE_MARKER: marker, ...env },
  });
  cleanups.push(async () => {
    await proc.kill();
    rmSync(marker, { force: true });
  });
  const ports = {
    grpc: await proc.listeningPort("grpc server listening", 30_000),
    metrics: await proc.listeningPort("metrics listening", 30_000),
  };
  const channel = createChannel(`127.0.0.1:${ports.grpc}`, { maxMessageBytes: 1024 * 1024 });
  cleanups.push(() => channel.close());
  const client = createServiceClient(EchoServiceDefinition, channel);
  const closeLog = () => {
    try {
      return readFileSync(marker, "utf8").split("\n").filter(Boolean);
    } catch {
      return [];
    }
  };
  return { proc, ports, channel, client, closeLog };
}

/** Bounded poll of /metrics until one Echo call is being handled. */
async function waitUntilInFlight(metricsPort: number): Promise<void> {
  await eventually(
    async () =>
      sampleValue(await scrape(metricsPort), "grpc_server_in_flight", { grpc_method: "Echo" }) === 1,
    { timeoutMs: 10_000, intervalMs: 25, message: "the call to show as in flight" },
  );
}

describe("sample service as a child process", () => {
  it("answers grpc.health.v1 Check with SERVING and lists its service by reflection", async () => {
    const { channel, ports } = await startSample();
    expect(await healthCheck(channel, "")).toBe("SERVING");
    expect(await healthCheck(channel, ECHO_SERVICE_NAME)).toBe("SERVING");
    expect(await reflectedServices(`127.0.0.1:${ports.grpc}`)).toContain(ECHO_SERVICE_NAME);
  });

  it("exposes request counts, latencies and errors per RPC on /metrics", async () => {
    const { client, ports, proc } = await startSample();
    for (let i = 0; i < 3; i++) await client.echo(echoRequest({ payload: new Uint8Array([i]) }));
    expect((await callFailure(client.echo(echoRequest({ failWith: "INVALID_ARGUMENT" })))).code).toBe(
      status.INVALID_ARGUMENT,
    );
    const bug = await callFailure(client.echo(echoRequest({ failWith: "BUG" })));
    expect(bug.code).toBe(status.INTERNAL);
    expect(bug.statusMessage).toBe(INTERNAL_ERROR_MESSAGE);

    const samples = await scrape(ports.metrics);
    const echo = { grpc_service: ECHO_SERVICE_NAME, grpc_method: "Echo", service: "echo" };
    expect(sampleValue(samples, "grpc_server_handled_total", { ...echo, grpc_code: "OK" })).toBe(3);
    expect(
      sampleValue(samples, "grpc_server_handled_total", { ...echo, grpc_code: "INVALID_ARGUMENT" }),
    ).toBe(1);
    expect(sampleValue(samples, "grpc_server_handled_total", { ...echo, grpc_code: "INTERNAL" })).toBe(1);
    expect(sampleValue(samples, "grpc_server_handling_seconds_count", echo)).toBe(5);
    expect(sampleValue(samples, "grpc_server_handling_seconds_bucket", { ...echo, le: "+Inf" })).toBe(5);
    expect(sampleValue(samples, "grpc_server_in_flight", echo)).toBe(0);
    expect(sampleValue(samples, "process_resident_memory_bytes", { service: "echo" })).toBeGreaterThan(0);
    // The unexpected error's details went to the log only.
    const logged = await proc.waitForLine((l) => l.msg === "rpc handler failed", {
      what: "the handler failure log",
    });
    expect(JSON.stringify(logged)).toContain("hunter2");
  });

  it("refuses an oversized message with RESOURCE_EXHAUSTED and keeps serving", async () => {
    const { client, ports } = await startSample({ GRPC_MAX_MESSAGE_BYTES: "64KiB" });
    const refused = await callFailure(client.echo(echoRequest({ payload: new Uint8Array(128 * 1024) })));
    expect(refused.code).toBe(status.RESOURCE_EXHAUSTED);
    const reply = await client.echo(echoRequest({ payload: new Uint8Array(32 * 1024).fill(7) }));
    expect(reply.payload.length).toBe(32 * 1024);
    const samples = await scrape(ports.metrics);
    const echo = { grpc_service: ECHO_SERVICE_NAME, grpc_method: "Echo" };
    expect(
      sampleValue(samples, "grpc_server_handled_total", { ...echo, grpc_code: "RESOURCE_EXHAUSTED" }),
    ).toBe(1);
  });

  it("on SIGTERM finishes the call in flight, refuses new calls, closes its resources and exits 0", async () => {
    const { client, ports, proc, closeLog } = await startSample();
    const inFlight = client.echo(echoRequest({ payload: new Uint8Array([42]), delayMs: 1500 }));
    await waitUntilInFlight(ports.metrics);
    proc.signal("SIGTERM");
    await proc.waitForLine((l) => l.msg === "grpc server draining", { what: "the drain to start" });
    expect((await callFailure(client.echo(echoRequest()))).code).toBe(status.UNAVAILABLE);
    expect(closeLog()).toEqual([]);

    const reply = await inFlight;
    expect(Buffer.from(reply.payload).toString("hex")).toBe("2a");
    expect(await proc.exited).toEqual({ code: 0, signal: null });
    // Reverse registration order: the relay stops before the database it uses closes.
    expect(closeLog()).toEqual(["relay stopped", "database closed"]);
    expect(proc.lines.find((l) => l.msg === "shutdown complete")).toMatchObject({ exitCode: 0 });
  });

  it("on a second SIGTERM cancels calls still in flight and still closes its resources", async () => {
    const { client, ports, proc, closeLog } = await startSample({ SHUTDOWN_GRACE_MS: "60s" });
    const inFlight = callFailure(client.echo(echoRequest({ delayMs: 60_000 })));
    await waitUntilInFlight(ports.metrics);
    proc.signal("SIGTERM");
    const draining = await proc.waitForLine((l) => l.msg === "grpc server draining", {
      what: "the drain to start",
    });
    expect(draining.inFlight).toBe(1);
    proc.signal("SIGTERM");
    expect((await inFlight).code).toBe(status.UNAVAILABLE);
    expect(await proc.exited).toEqual({ code: 0, signal: null });
    expect(closeLog()).toEqual(["relay stopped", "database closed"]);
    expect(proc.lines.some((l) => l.msg === "second signal: cancelling in-flight calls")).toBe(true);
  });

  it("exits 1 naming every bad variable when the configuration is invalid", async () => {
    const proc = ServiceProcess.spawn({
      name: "echo",
      entry: SCRIPT,
      env: { GRPC_PORT: "abc", SHUTDOWN_GRACE_MS: "forever" },
    });
    cleanups.push(async () => {
      await proc.kill();
    });
    expect((await proc.exited).code).toBe(1);
    const fatal = proc.lines.find((l) => l.level === "fatal");
    expect(fatal?.msg).toContain("GRPC_PORT: not an integer");
    expect(fatal?.msg).toContain("SHUTDOWN_GRACE_MS: not a duration");
  });
});
