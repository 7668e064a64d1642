import { Writable } from "node:stream";
import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { DatabaseUnavailableError } from "../db/open-database.js";
import { createLogger } from "../log/create-logger.js";
import { createMetrics } from "../metrics/create-metrics.js";
import { startMetricsServer } from "../metrics/metrics-server.js";
import { eventually } from "../testing/eventually.js";
import { backoffDelay, retryWithBackoff } from "./backoff.js";
import { Readiness } from "./readiness.js";
import { dependencyUnavailable } from "./unavailable.js";
import { watchDependency } from "./watch.js";

function collectingLogger() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      for (const line of String(chunk).split("\n")) if (line.trim()) lines.push(JSON.parse(line));
      callback();
    },
  });
  return { lines, logger: createLogger({ service: "health-test", level: "info", destination }) };
}

describe("backoff", () => {
  it("doubles from the initial delay and never exceeds the maximum, however long the outage", () => {
    const options = { initialDelayMs: 100, maxDelayMs: 3000 };
    const delays = Array.from({ length: 40 }, (_, i) => backoffDelay(i + 1, options));
    for (const delay of delays) expect(delay).toBeLessThanOrEqual(3000);
    // Jitter takes at most a fifth off.
    expect(delays[0]).toBeGreaterThanOrEqual(80);
    expect(delays[3]).toBeGreaterThanOrEqual(640);
    expect(delays[39]).toBeGreaterThanOrEqual(2400);
  });

  it("retries until the attempt succeeds, logging each failure with the dependency's name", async () => {
    const { lines, logger } = collectingLogger();
    let calls = 0;
    const value = await retryWithBackoff(
      async () => {
        calls += 1;
        if (calls < 3) throw new Error(`refused ${calls}`);
        return "open";
      },
      { dependency: "database", logger, initialDelayMs: 1, maxDelayMs: 2 },
    );
    expect(value).toBe("open");
    const retries = lines.filter((l) => l.msg === "database unreachable; retrying");
    expect(retries.map((l) => [l.level, l.dependency, l.attempt, l.error])).toEqual([
      ["warn", "database", 1, "refused 1"],
      ["warn", "database", 2, "refused 2"],
    ]);
    expect(lines.at(-1)).toMatchObject({ msg: "database reachable", attempts: 3 });
  });

  it("throws at once an error that is not worth waiting out, and stops when aborted", async () => {
    const { logger } = collectingLogger();
    const bad = new Error("migration failed: syntax error");
    await expect(
      retryWithBackoff(() => Promise.reject(bad), { dependency: "database", logger, retryable: () => false }),
    ).rejects.toBe(bad);
    const stop = new AbortController();
    const retrying = retryWithBackoff(() => Promise.reject(new Error("refused")), {
      dependency: "bus",
      logger,
      initialDelayMs: 60_000,
      signal: stop.signal,
    });
    stop.abort(new Error("shutting down"));
    await expect(retrying).rejects.toThrow("shutting down");
  });
});

describe("readiness", () => {
  it("is ready once started while every dependency is up, and tells listeners of each flip", async () => {
    const readiness = new Readiness();
    const flips: boolean[] = [];
    readiness.onChange((ready) => flips.push(ready));
    const database = readiness.dependency("database");
    database.up();
    expect(readiness.ready).toBe(false); // not started
    readiness.markStarted();
    expect(readiness.ready).toBe(true);
    database.down("connect ECONNREFUSED 127.0.0.1:5432");
    expect(await readiness.report()).toEqual({
      ready: false,
      body: { status: "not ready", dependencies: { database: "down: connect ECONNREFUSED 127.0.0.1:5432" } },
    });
    database.up();
    readiness.markShuttingDown();
    database.up();
    expect(flips).toEqual([true, false, true, false]);
    expect((await readiness.report()).body).toEqual({
      status: "not ready",
      reason: "shutting down",
      dependencies: { database: "up" },
    });
  });

  it("runs its checks on each report; a failing or hanging check is not ready", async () => {
    const readiness = new Readiness({ checkTimeoutMs: 50 });
    readiness.markStarted();
    let upstreams: Record<string, string> = { auth: "SERVING" };
    readiness.addCheck("upstreams", async () => ({
      ready: Object.values(upstreams).every((s) => s === "SERVING"),
      detail: upstreams,
    }));
    expect(await readiness.report()).toEqual({
      ready: true,
      body: { status: "ready", upstreams: { auth: "SERVING" } },
    });
    upstreams = { auth: "NOT_SERVING" };
    expect((await readiness.report()).ready).toBe(false);
    readiness.addCheck("hangs", () => new Promise(() => {}));
    upstreams = { auth: "SERVING" };
    expect(await readiness.report()).toEqual({
      ready: false,
      body: { status: "not ready", upstreams: { auth: "SERVING" }, hangs: "check timed out" },
    });
  });

  it("is served as /healthz and /readyz on the metrics port", async () => {
    const readiness = new Readiness();
    const bus = readiness.dependency("bus");
    const server = await startMetricsServer({
      registry: createMetrics({ service: "t" }).registry,
      port: 0,
      readiness,
    });
    try {
      const get = async (path: string, method = "GET") => {
        const res = await fetch(`http://127.0.0.1:${server.port}${path}`, { method });
        return { status: res.status, type: res.headers.get("content-type"), text: await res.text() };
      };
      expect(await get("/healthz")).toEqual({
        status: 200,
        type: "application/json; charset=utf-8",
        text: '{"status":"ok"}',
      });
      expect(await get("/readyz")).toMatchObject({ status: 503 });
      bus.up();
      readiness.markStarted();
      expect(await get("/readyz")).toMatchObject({
        status: 200,
        text: '{"status":"ready","dependencies":{"bus":"up"}}',
      });
      expect((await get("/readyz", "POST")).status).toBe(405);
      expect((await get("/metrics")).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});

describe("watchDependency", () => {
  it("probes at once on a failure report; down only when the probe fails, up again when it answers", async () => {
    const { lines, logger } = collectingLogger();
    const readiness = new Readiness();
    readiness.markStarted();
    const database = readiness.dependency("database");
    let answering = true;
    let probes = 0;
    const watch = watchDependency({
      dependency: database,
      logger,
      intervalMs: 600_000, // only reports wake it in this test
      initialDelayMs: 1,
      maxDelayMs: 5,
      probe: async () => {
        probes += 1;
        if (!answering) throw new Error("connect ECONNREFUSED 127.0.0.1:5432");
      },
    });
    try {
      expect(readiness.ready).toBe(true);
      // One dead connection whose replacement answers is not an outage.
      watch.failed(new Error("Connection terminated unexpectedly"));
      await eventually(() => probes === 1, { message: "a probe after the report" });
      expect(readiness.ready).toBe(true);

      answering = false;
      watch.failed(new Error("Connection terminated unexpectedly"));
      await eventually(() => !readiness.ready, { message: "the database down" });
      expect(database.state).toEqual({ up: false, reason: "connect ECONNREFUSED 127.0.0.1:5432" });
      await eventually(
        () => lines.some((l) => l.msg === "database unreachable; retrying" && l.attempt === 2),
        {
          message: "retries while it is down",
        },
      );
      answering = true;
      await eventually(() => readiness.ready, { message: "the database back" });
      expect(lines.map((l) => l.msg)).toContain("database lost: not ready until it is back");
      expect(lines.map((l) => l.msg)).toContain("database is back: ready");
    } finally {
      await watch.close();
    }
  });
});

describe("dependencyUnavailable", () => {
  it("maps an unreachable database or bus to UNAVAILABLE naming it, and leaves other errors alone", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
    const database = dependencyUnavailable(
      new DatabaseUnavailableError("cannot connect", { cause: refused }),
    );
    expect([database?.code, database?.message]).toEqual([
      status.UNAVAILABLE,
      "the database is unreachable; retry later",
    ]);
    const adminShutdown = Object.assign(new Error("terminating connection due to administrator command"), {
      code: "57P01",
    });
    expect(dependencyUnavailable(adminShutdown)?.message).toBe("the database is unreachable; retry later");
    const terminated = new Error("Failed query: insert …", {
      cause: new Error("Connection terminated unexpectedly"),
    });
    expect(dependencyUnavailable(terminated)?.message).toBe("the database is unreachable; retry later");
    const nats = Object.assign(new Error("closed connection"), { name: "ClosedConnectionError" });
    expect(dependencyUnavailable(nats)?.message).toBe("the message bus is unreachable; retry later");
    expect(dependencyUnavailable(refused)?.message).toBe(
      "a dependency of the service is unreachable; retry later",
    );
    // A constraint violation or a bug is not an outage.
    expect(
      dependencyUnavailable(Object.assign(new Error("duplicate key"), { code: "23505" })),
    ).toBeUndefined();
    expect(dependencyUnavailable(new TypeError("x is undefined"))).toBeUndefined();
  });
});
