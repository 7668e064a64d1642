// Services while their dependencies come and go (#17): a service started while Postgres or NATS
// cannot be reached waits for it (retrying with backoff, logged) instead of exiting; one that
// loses a dependency reports NOT_SERVING on gRPC health and 503 on /readyz, answers requests
// UNAVAILABLE without half-writing anything, and recovers by itself. Postgres is reached through
// a TCP proxy the test cuts; NATS is a private nats-server the test starts and kills.
import { existsSync } from "node:fs";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { status } from "@grpc/grpc-js";
import { createChannel, createServiceClient } from "@phoenix/runtime/grpc";
import { sql } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { busConfig } from "../src/bus/config.js";
import { serviceConfig } from "../src/config/base-config.js";
import { databaseConfig } from "../src/db/config.js";
import { transaction } from "../src/db/transaction.js";
import type { Database } from "../src/db/types.js";
import {
  bidiStreaming,
  clientStreaming,
  defineService,
  serverStreaming,
  unary,
} from "../src/grpc/handlers.js";
import { type RunningModule, runModule } from "../src/module/run-module.js";
import { defineServiceModule } from "../src/module/service-module.js";
import { callFailure } from "../src/testing/call-failure.js";
import { eventually } from "../src/testing/eventually.js";
import { freePort, freePorts, NATS_SERVER_BINARY } from "../src/testing/local-ports.js";
import { privateNats } from "../src/testing/private-nats.js";
import { startTcpProxy, type TcpProxy } from "../src/testing/tcp-proxy.js";
import { createTestDatabase, type TestDatabase } from "../src/testing/test-database.js";
import { ECHO_SERVICE_NAME, EchoServiceDefinition, echoRequest } from "./fixtures/echo-contract.js";
import { healthCheck } from "./support/probes.js";

const MIGRATIONS = fileURLToPath(new URL("../src/db/test-fixture/migrations", import.meta.url));
const config = serviceConfig({ serviceName: "deps" }).extend({ ...databaseConfig.shape, ...busConfig.shape });

/** Parsed log lines of the service. */
function logCollector() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      for (const line of String(chunk).split("\n")) if (line.trim()) lines.push(JSON.parse(line));
      callback();
    },
  });
  return { lines, destination };
}

/**
 * A service whose one RPC writes two rows in one transaction (a blob, then a group named after
 * it); `pause` as `failWith` stops between the two until `between` resolves.
 */
function writerModule(between: () => Promise<void> = async () => {}) {
  const writer = (db: Database) =>
    defineService(EchoServiceDefinition, {
      echo: unary(async (request) => {
        const key = Buffer.from(request.payload).toString("hex");
        await transaction(db, async (tx) => {
          await tx.execute(sql`insert into blobs (data) values (decode(${key}, 'hex'))`);
          if (request.failWith === "pause") await between();
          await tx.execute(sql`insert into groups (id) values (${key})`);
        });
        return { payload: request.payload, seq: 1 };
      }),
      echoStream: serverStreaming(async () => {}),
      collect: clientStreaming(async () => ({ payload: new Uint8Array(0), seq: 0 })),
      chat: bidiStreaming(async () => {}),
    });
  return defineServiceModule({
    name: "deps",
    config,
    grpc: true,
    storage: { migrationsFolder: MIGRATIONS },
    async create({ database }) {
      return { services: [writer(database.db)] };
    },
  });
}

async function probe(port: number, path: "/healthz" | "/readyz") {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** The gRPC health of the whole server and of its one service, or "UNREACHABLE". */
async function health(grpcPort: number): Promise<string> {
  const channel = createChannel(`127.0.0.1:${grpcPort}`);
  try {
    const [overall, service] = await Promise.all([
      healthCheck(channel, ""),
      healthCheck(channel, ECHO_SERVICE_NAME),
    ]);
    return overall === service ? overall : `${overall}/${service}`;
  } catch {
    return "UNREACHABLE";
  } finally {
    channel.close();
  }
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function testDatabaseBehindProxy(): Promise<{ db: TestDatabase; proxy: TcpProxy; url: string }> {
  const db = await createTestDatabase();
  cleanups.push(() => db.close());
  const target = new URL(db.url ?? "");
  const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
  cleanups.push(() => proxy.close());
  const url = new URL(target);
  url.hostname = "127.0.0.1";
  url.port = String(proxy.port);
  return { db, proxy, url: url.toString() };
}

function start(env: Record<string, string>, module = writerModule()) {
  const logs = logCollector();
  const starting = runModule(module, {
    env: { GRPC_PORT: "0", LOG_LEVEL: "info", SHUTDOWN_GRACE_MS: "2s", ...env },
    signals: false,
    exit: false,
    logDestination: logs.destination,
  });
  const stop = async () => {
    const running = await starting.catch(() => undefined);
    await running?.process.shutdown();
  };
  cleanups.push(stop);
  return { starting, logs };
}

function client(running: RunningModule) {
  const channel = createChannel(`127.0.0.1:${running.grpcPort}`);
  cleanups.push(() => channel.close());
  return createServiceClient(EchoServiceDefinition, channel, { defaultDeadlineMs: 10_000 });
}

describe("Postgres coming and going", () => {
  it("a service started while Postgres is unreachable waits, says why on /readyz, and serves once it is back", async () => {
    const { proxy, url } = await testDatabaseBehindProxy();
    await proxy.cut();
    const metricsPort = await freePort();
    const { starting, logs } = start({ DATABASE_URL: url, METRICS_PORT: String(metricsPort) });
    // Should the test fail while the service waits, the database comes back so it can stop.
    cleanups.push(() => proxy.restore());

    // Alive but not ready while it retries; each attempt is logged naming the dependency.
    await eventually(() => logs.lines.filter((l) => l.msg === "database unreachable; retrying").length >= 2, {
      timeoutMs: 20_000,
      message: "two logged attempts to reach the database",
    });
    const attempt = logs.lines.find((l) => l.msg === "database unreachable; retrying");
    expect(attempt).toMatchObject({ level: "warn", dependency: "database", attempt: 1 });
    expect(String(attempt?.error)).toMatch(/ECONNREFUSED|cannot connect/);
    expect(await probe(metricsPort, "/healthz")).toEqual({ status: 200, body: { status: "ok" } });
    const waiting = await probe(metricsPort, "/readyz");
    expect(waiting.status).toBe(503);
    expect(waiting.body).toMatchObject({ status: "not ready", reason: "starting" });
    expect(String((waiting.body.dependencies as Record<string, string>).database)).toMatch(/^down/);

    await proxy.restore();
    const running = await starting;
    expect(logs.lines.some((l) => l.msg === "database reachable" && l.dependency === "database")).toBe(true);
    // No NATS_URL: the embedded bus lives in the database, which is the one dependency.
    expect(await probe(metricsPort, "/readyz")).toEqual({
      status: 200,
      body: { status: "ready", dependencies: { database: "up" } },
    });
    expect(await health(running.grpcPort ?? 0)).toBe("SERVING");
    const reply = await client(running).echo(echoRequest({ payload: new Uint8Array([1, 2]) }));
    expect(reply.seq).toBe(1);
  });

  it("a running service goes NOT_SERVING and 503 when Postgres goes, refuses writes UNAVAILABLE with nothing half-written, and recovers without a restart", async () => {
    const { db, proxy, url } = await testDatabaseBehindProxy();
    let reached: () => void = () => {};
    const inTransaction = new Promise<void>((resolve) => {
      reached = resolve;
    });
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { starting, logs } = start(
      { DATABASE_URL: url, METRICS_PORT: "0" },
      writerModule(async () => {
        reached();
        await released;
      }),
    );
    cleanups.push(() => proxy.restore());
    const running = await starting;
    const metricsPort = running.process.metricsServer.port;
    const echo = client(running);
    expect(await health(running.grpcPort ?? 0)).toBe("SERVING");
    await echo.echo(echoRequest({ payload: new Uint8Array([0xaa]) }));

    // A write is half done (its first row inserted) when Postgres goes away.
    const halfDone = callFailure(
      echo.echo(echoRequest({ payload: new Uint8Array([0xbb]), failWith: "pause" })),
    );
    await inTransaction;
    await proxy.cut();
    release();
    const broken = await halfDone;
    expect(broken.code).toBe(status.UNAVAILABLE);
    expect(broken.statusMessage).toBe("the database is unreachable; retry later");

    // Every service name goes NOT_SERVING, /readyz 503 naming the database; /healthz stays 200.
    await eventually(async () => (await health(running.grpcPort ?? 0)) === "NOT_SERVING", {
      timeoutMs: 20_000,
      message: "NOT_SERVING while the database is unreachable",
    });
    const down = await probe(metricsPort, "/readyz");
    expect(down.status).toBe(503);
    expect(String((down.body.dependencies as Record<string, string>).database)).toMatch(/^down: /);
    expect((await probe(metricsPort, "/healthz")).status).toBe(200);
    expect(logs.lines.some((l) => l.msg === "database lost: not ready until it is back")).toBe(true);

    // A request during the outage is refused UNAVAILABLE, clearly.
    const refused = await callFailure(echo.echo(echoRequest({ payload: new Uint8Array([0xcc]) })));
    expect(refused.code).toBe(status.UNAVAILABLE);
    expect(refused.statusMessage).toBe("the database is unreachable; retry later");

    // Back without a restart.
    await proxy.restore();
    await eventually(async () => (await health(running.grpcPort ?? 0)) === "SERVING", {
      timeoutMs: 20_000,
      message: "SERVING once the database is back",
    });
    expect((await probe(metricsPort, "/readyz")).status).toBe(200);
    expect(logs.lines.some((l) => l.msg === "database is back: ready")).toBe(true);
    await echo.echo(echoRequest({ payload: new Uint8Array([0xdd]) }));

    // Only the acknowledged writes are there, each whole: nothing of the broken or refused ones.
    const blobs = await db.db.execute(sql`select encode(data, 'hex') as key from blobs order by id`);
    const groups = await db.db.execute(sql`select id from groups order by id`);
    expect((blobs as unknown as { rows: { key: string }[] }).rows.map((r) => r.key)).toEqual(["aa", "dd"]);
    expect((groups as unknown as { rows: { id: string }[] }).rows.map((r) => r.id)).toEqual(["aa", "dd"]);
  });
});

describe.skipIf(!existsSync(NATS_SERVER_BINARY))("NATS coming and going", () => {
  it("a service started while NATS is unreachable waits for it; losing it later makes it NOT_SERVING until it is back", async () => {
    const db = await createTestDatabase();
    cleanups.push(() => db.close());
    const [natsPort, metricsPort] = await freePorts(2);
    const nats = await privateNats(natsPort as number);
    cleanups.push(() => nats.close());
    const { starting, logs } = start({
      DATABASE_URL: db.url ?? "",
      NATS_URL: nats.url,
      METRICS_PORT: String(metricsPort),
    });
    // Should the test fail while the service waits, NATS comes up so it can stop.
    cleanups.push(() => nats.start());
    await eventually(() => logs.lines.some((l) => l.msg === "bus unreachable; retrying"), {
      timeoutMs: 20_000,
      message: "a logged attempt to reach NATS",
    });
    expect(logs.lines.find((l) => l.msg === "bus unreachable; retrying")).toMatchObject({
      level: "warn",
      dependency: "bus",
      attempt: 1,
    });
    const waiting = await probe(metricsPort as number, "/readyz");
    expect(waiting.status).toBe(503);
    expect(waiting.body).toMatchObject({ status: "not ready", reason: "starting" });

    await nats.start();
    const running = await starting;
    expect(await probe(metricsPort as number, "/readyz")).toEqual({
      status: 200,
      body: { status: "ready", dependencies: { database: "up", bus: "up" } },
    });
    expect(await health(running.grpcPort ?? 0)).toBe("SERVING");

    await nats.stop();
    await eventually(async () => (await health(running.grpcPort ?? 0)) === "NOT_SERVING", {
      timeoutMs: 20_000,
      message: "NOT_SERVING while NATS is down",
    });
    const down = await probe(metricsPort as number, "/readyz");
    expect(down.status).toBe(503);
    expect(down.body.dependencies).toMatchObject({ database: "up", bus: expect.stringMatching(/^down: /) });
    expect(logs.lines.some((l) => l.msg === "bus lost: not ready until it is back")).toBe(true);

    await nats.start();
    await eventually(async () => (await health(running.grpcPort ?? 0)) === "SERVING", {
      timeoutMs: 20_000,
      message: "SERVING once NATS is back",
    });
    expect((await probe(metricsPort as number, "/readyz")).status).toBe(200);
    expect(logs.lines.some((l) => l.msg === "bus is back: ready")).toBe(true);
  });
});
