import { Counter } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { createMetrics } from "./create-metrics.js";
import { type MetricsServer, startMetricsServer } from "./metrics-server.js";

let server: MetricsServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe("metrics", () => {
  it("serves RPC, process and domain metrics over HTTP on loopback", async () => {
    const metrics = createMetrics({ service: "echo" });
    const finish = metrics.rpc.start("test.Echo", "Say");
    finish("OK");
    finish("INTERNAL"); // a second finish is ignored
    metrics.rpc.start("test.Echo", "Say")("INVALID_ARGUMENT");
    metrics.rpc.start("test.Echo", "Slow"); // still in flight
    const custom = new Counter({
      name: "echo_bytes_total",
      help: "bytes echoed",
      registers: [metrics.registry],
    });
    custom.inc(5);

    server = await startMetricsServer({ registry: metrics.registry, port: 0 });
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/metrics`);
    const response = await fetch(server.url);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/plain");
    const samples = parseSamples(await response.text());
    const value = (name: string, labels: Record<string, string>) =>
      samples.find((m) => m.name === name && Object.entries(labels).every(([k, v]) => m.labels[k] === v))
        ?.value;
    const say = { grpc_service: "test.Echo", grpc_method: "Say", service: "echo" };
    expect(value("grpc_server_handled_total", { ...say, grpc_code: "OK" })).toBe(1);
    expect(value("grpc_server_handled_total", { ...say, grpc_code: "INVALID_ARGUMENT" })).toBe(1);
    expect(value("grpc_server_handled_total", { ...say, grpc_code: "INTERNAL" })).toBeUndefined();
    expect(value("grpc_server_handling_seconds_count", say)).toBe(2);
    expect(value("grpc_server_in_flight", say)).toBe(0);
    expect(value("grpc_server_in_flight", { ...say, grpc_method: "Slow" })).toBe(1);
    expect(value("echo_bytes_total", { service: "echo" })).toBe(5);
    expect(samples.some((m) => m.name === "process_cpu_user_seconds_total")).toBe(true);
  });

  it("answers 404 elsewhere and 405 for writes", async () => {
    server = await startMetricsServer({
      registry: createMetrics({ service: "x", defaultMetrics: false }).registry,
      port: 0,
    });
    expect((await fetch(server.url.replace("/metrics", "/"))).status).toBe(404);
    expect((await fetch(server.url, { method: "POST" })).status).toBe(405);
  });

  it("keeps registries of several services apart", async () => {
    const a = createMetrics({ service: "a", defaultMetrics: false });
    const b = createMetrics({ service: "b", defaultMetrics: false });
    a.rpc.start("s", "m")("OK");
    const handled = async (m: typeof a) =>
      (await m.registry.getSingleMetric("grpc_server_handled_total")?.get())?.values.map((v) => v.value);
    // Both registries have the counter; only a's counted the call.
    expect(await handled(a)).toEqual([1]);
    expect(await handled(b)).toEqual([]);
  });
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (enough of it for these assertions). */
function parseSamples(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[k as string] = v as string;
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return samples;
}
