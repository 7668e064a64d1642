import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { sql } from "drizzle-orm";
import { Counter } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { busConfig } from "../bus/config.js";
import { busTopology } from "../bus/layout.js";
import type { Bus } from "../bus/types.js";
import { envAddressList, envBool, envDuration, envInt, envString, serviceConfig } from "../config/index.js";
import { ConfigError, loadConfig as loadConfigOf } from "../config/load-config.js";
import { databaseConfig } from "../db/config.js";
import { ServiceStartError } from "../lifecycle/run-service.js";
import { createMetrics } from "../metrics/create-metrics.js";
import { acceptsConnections, freePort } from "../testing/local-ports.js";
import { createTestDatabase, type TestDatabase } from "../testing/test-database.js";
import { moduleEnv } from "./module-env.js";
import { ModuleStartError, ModuleStopError, runModule, startModules, withOverrides } from "./run-module.js";
import { defineServiceModule, type EmbedSettings } from "./service-module.js";
import { testConfig } from "./test-config.js";
import type { Worker } from "./worker.js";

/** A toy gRPC module: a domain, a greeting with a default, and a number the embedder sets. */
const toyConfig = serviceConfig({ serviceName: "toy" }).extend({
  TOY_DOMAIN: envString(),
  TOY_GREETING: envString({ default: "hello" }),
  TOY_UPSTREAM: envString({ default: "none" }),
  TOY_LIMIT: envInt({ default: 10, min: 1 }),
  TOY_TICK_MS: envDuration({ default: 5000, min: 1 }),
});

const quiet = { GRPC_PORT: "0", METRICS_PORT: "0", SHUTDOWN_GRACE_MS: "1s" };

function logSink(): Writable {
  return new Writable({ write: (_chunk, _encoding, callback) => callback() });
}

const settings = {
  domain: "toy.example",
  dataDir: "/nonexistent",
  logLevel: "silent",
  shutdownGraceMs: 500,
} as const;

/** Records what each toy module saw and what was released, in order. */
function recorder() {
  const created: string[] = [];
  const closed: string[] = [];
  const seen = new Map<string, EmbedSettings["addresses"]>();
  return { created, closed, seen };
}

function grpcToy(name: string, log: ReturnType<typeof recorder>) {
  return defineServiceModule({
    name,
    config: toyConfig,
    grpc: true,
    embed: (s) => {
      log.seen.set(name, s.addresses);
      return { TOY_DOMAIN: s.domain, TOY_UPSTREAM: s.addresses.first };
    },
    async create({ onShutdown }) {
      log.created.push(name);
      onShutdown(() => void log.closed.push(name), name);
      return { services: [] };
    },
  });
}

/** A module with a listener of its own that publishes its URL. */
function httpToy(name: string, log: ReturnType<typeof recorder>) {
  return defineServiceModule({
    name,
    config: toyConfig,
    grpc: false,
    embed: (s) => {
      log.seen.set(name, s.addresses);
      return { TOY_DOMAIN: s.domain };
    },
    async create({ onShutdown }) {
      log.created.push(name);
      const server = await listen(createServer((_req, res) => res.end(name)));
      onShutdown(() => {
        log.closed.push(name);
        return new Promise<void>((resolve) => server.close(() => resolve()));
      }, name);
      return {
        addresses: { [`${name}.http`]: `http://127.0.0.1:${(server.address() as AddressInfo).port}` },
      };
    },
  });
}

describe("runModule", () => {
  it("takes defaults from the module's schema and env for the rest, and publishes its gRPC address", async () => {
    const log = recorder();
    let greeting = "";
    const module = defineServiceModule({
      name: "toy",
      config: toyConfig,
      grpc: true,
      async create({ config }) {
        greeting = `${config.TOY_GREETING} ${config.TOY_DOMAIN} ${config.TOY_LIMIT}`;
        log.created.push("toy");
        return {};
      },
    });
    const running = await runModule(module, {
      env: { ...quiet, TOY_DOMAIN: "env.example" },
      signals: false,
      exit: false,
      logDestination: logSink(),
    });
    expect(greeting).toBe("hello env.example 10");
    expect(running.process.config.TOY_TICK_MS).toBe(5000);
    expect(running.grpcPort).toBeGreaterThan(0);
    expect(running.addresses).toEqual({ toy: `127.0.0.1:${running.grpcPort}` });
    expect(await running.process.shutdown()).toBe(0);
  });

  it("opens the declared database (migrated) and bus from config and closes them on shutdown", async () => {
    testDb = await createTestDatabase();
    const stream = `MODULE_${randomBytes(4).toString("hex")}`;
    const storageConfig = serviceConfig({ serviceName: "storage-toy" }).extend({
      ...databaseConfig.shape,
      ...busConfig.shape,
    });
    let opened: { database: TestDatabase["db"]; bus: Bus } | undefined;
    const module = defineServiceModule({
      name: "storage-toy",
      config: storageConfig,
      grpc: false,
      storage: { migrationsFolder: new URL("../db/test-fixture/migrations", import.meta.url).pathname },
      async create({ database, bus }) {
        // The fixture migration's table exists: the database was migrated at open.
        await database.db.execute(sql`select count(*) from blobs`);
        await bus.ensureStream({ name: stream, subjects: [`${stream.toLowerCase()}.>`] });
        opened = { database: database.db, bus };
        return {};
      },
    });
    const running = await runModule(module, {
      // No NATS_URL: the embedded bus, in the module's database (dropped with it).
      env: { ...quiet, DATABASE_URL: testDb.url ?? "" },
      signals: false,
      exit: false,
      logDestination: logSink(),
    });
    expect(opened).not.toBeUndefined();
    expect(await running.process.shutdown()).toBe(0);
    await expect(opened?.database.execute(sql`select 1`)).rejects.toThrow();
  });

  it("uses handed-in storage and leaves closing it to the caller", async () => {
    testDb = await createTestDatabase();
    const bus = { close: () => Promise.reject(new Error("the caller's bus was closed")) } as unknown as Bus;
    const module = defineServiceModule({
      name: "handed-toy",
      config: serviceConfig({ serviceName: "handed-toy" }).extend({
        ...databaseConfig.shape,
        ...busConfig.shape,
      }),
      grpc: false,
      storage: {},
      async create(host) {
        expect(host.database).toBe(testDb);
        expect(host.bus).toBe(bus);
        return {};
      },
    });
    const running = await runModule(module, {
      env: quiet,
      resources: { database: testDb, bus },
      signals: false,
      exit: false,
      logDestination: logSink(),
    });
    // Neither was closed by the runner: the bus would fail the shutdown, the database answers.
    expect(await running.process.shutdown()).toBe(0);
    await expect(testDb.db.execute(sql`select 1`)).resolves.not.toBeUndefined();
  });

  it("records into handed-in metrics, which its metrics endpoint then serves", async () => {
    const metrics = createMetrics({ service: "embedder", defaultMetrics: false });
    const module = defineServiceModule({
      name: "counting-toy",
      config: toyConfig,
      grpc: false,
      async create({ metrics: host }) {
        new Counter({ name: "toy_started_total", help: "starts", registers: [host.registry] }).inc();
        return {};
      },
    });
    const running = await runModule(module, {
      env: { ...quiet, TOY_DOMAIN: "a.example" },
      resources: { metrics },
      signals: false,
      exit: false,
      logDestination: logSink(),
    });
    expect(await metrics.registry.getSingleMetricAsString("toy_started_total")).toContain(
      'toy_started_total{service="embedder"} 1',
    );
    expect(await (await fetch(running.process.metricsServer.url)).text()).toContain("toy_started_total");
    expect(await running.process.shutdown()).toBe(0);
  });

  it("starts the declared workers in order before serving and stops them in reverse before the resources close", async () => {
    const port = await freePort();
    const events: string[] = [];
    const worker = (name: string): Worker => ({
      name,
      async start() {
        events.push(`start ${name} (serving: ${await acceptsConnections(port)})`);
      },
      async stop() {
        events.push(`stop ${name} (serving: ${await acceptsConnections(port)})`);
      },
    });
    const module = defineServiceModule({
      name: "working-toy",
      config: toyConfig,
      grpc: true,
      async create({ onShutdown }) {
        onShutdown(() => void events.push("close database"), "database");
        onShutdown(() => void events.push("close service"), "service");
        events.push("created");
        return { services: [], workers: [worker("relay"), worker("consumer"), worker("sweeper")] };
      },
    });
    const running = await runModule(module, {
      env: { ...quiet, GRPC_PORT: String(port), TOY_DOMAIN: "a.example" },
      signals: false,
      exit: false,
      logDestination: logSink(),
    });
    expect(await acceptsConnections(port)).toBe(true);
    expect(events).toEqual([
      "created",
      "start relay (serving: false)",
      "start consumer (serving: false)",
      "start sweeper (serving: false)",
    ]);
    events.length = 0;
    expect(await running.process.shutdown()).toBe(0);
    // The gRPC server drained first; then the workers, then what create registered.
    expect(events).toEqual([
      "stop sweeper (serving: false)",
      "stop consumer (serving: false)",
      "stop relay (serving: false)",
      "close service",
      "close database",
    ]);
  });

  it("fails the start when a worker fails to start, stopping the ones started and releasing the resources", async () => {
    const events: string[] = [];
    const boom = new Error("stream missing");
    const worker = (name: string, fail = false): Worker => ({
      name,
      start() {
        events.push(`start ${name}`);
        if (fail) throw boom;
      },
      stop: () => void events.push(`stop ${name}`),
    });
    const module = defineServiceModule({
      name: "failing-worker-toy",
      config: toyConfig,
      grpc: false,
      async create({ onShutdown }) {
        onShutdown(() => void events.push("close database"), "database");
        return { workers: [worker("relay"), worker("consumer", true), worker("sweeper")] };
      },
    });
    const start = runModule(module, {
      env: { ...quiet, TOY_DOMAIN: "a.example" },
      signals: false,
      exit: false,
      logDestination: logSink(),
    });
    const error = await start.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServiceStartError);
    expect((error as ServiceStartError).cause).toBe(boom);
    expect(events).toEqual(["start relay", "start consumer", "stop relay", "close database"]);
  });

  it("refuses a module that declares storage its schema has no variables for", async () => {
    const module = defineServiceModule({
      name: "no-db-toy",
      config: toyConfig,
      grpc: false,
      storage: { bus: false },
      create: async () => ({}),
    });
    const start = runModule(module, {
      env: { ...quiet, TOY_DOMAIN: "a.example" },
      signals: false,
      exit: false,
      logDestination: logSink(),
    });
    await expect(start).rejects.toThrow(
      "module no-db-toy declares storage but its config schema lacks DATABASE_URL, DATA_DIR",
    );
  });

  it("refuses gRPC services from a module declared without gRPC", async () => {
    const module = defineServiceModule({
      name: "confused-toy",
      config: toyConfig,
      grpc: false,
      create: async () => ({ services: [{ name: "x", definition: {}, handlers: {} }] }),
    });
    const start = runModule(module, {
      env: { ...quiet, TOY_DOMAIN: "a.example" },
      signals: false,
      exit: false,
      logDestination: logSink(),
    });
    await expect(start).rejects.toBeInstanceOf(ServiceStartError);
    await expect(start).rejects.toThrow("declared grpc: false");
  });
});

describe("startModules", () => {
  it("starts in order, passes each the addresses published before it, and stops in reverse", async () => {
    const log = recorder();
    const running = await startModules([grpcToy("first", log), httpToy("front", log), grpcToy("last", log)], {
      env: { TOY_DOMAIN: "ignored.example", TOY_GREETING: "hi" },
      settings,
      logDestination: logSink(),
    });
    expect(log.created).toEqual(["first", "front", "last"]);
    const first = running.modules.first;
    const front = running.modules.front;
    expect(first?.grpcPort).toBeGreaterThan(0);
    const firstAddress = `127.0.0.1:${first?.grpcPort}`;
    expect(log.seen.get("first")).toEqual({});
    expect(log.seen.get("front")).toEqual({ first: firstAddress });
    expect(log.seen.get("last")).toEqual({
      first: firstAddress,
      "front.http": front?.addresses["front.http"],
    });
    const frontUrl = running.addresses["front.http"] ?? "";
    expect(await (await fetch(frontUrl)).text()).toBe("front");
    // Typed values from the settings, env for what embed leaves alone, schema defaults otherwise.
    const last = running.modules.last?.process.config;
    expect(last).toMatchObject({
      SERVICE_NAME: "last",
      LOG_LEVEL: "silent",
      TOY_DOMAIN: "toy.example",
      TOY_UPSTREAM: firstAddress,
      TOY_GREETING: "hi",
      TOY_LIMIT: 10,
      SHUTDOWN_GRACE_MS: 500,
      GRPC_HOST: "127.0.0.1",
    });
    await running.stop();
    expect(log.closed).toEqual(["last", "front", "first"]);
    await expect(fetch(frontUrl)).rejects.toThrow();
  });

  it("ignores env for the keys the runner and embed set, even when env's value is invalid", async () => {
    const log = recorder();
    const running = await startModules([grpcToy("only", log)], {
      env: { TOY_DOMAIN: "", GRPC_PORT: "not a port", SHUTDOWN_GRACE_MS: "soon" },
      settings,
      logDestination: logSink(),
    });
    expect(running.modules.only?.process.config).toMatchObject({
      TOY_DOMAIN: "toy.example",
      GRPC_PORT: 0,
      SHUTDOWN_GRACE_MS: 500,
    });
    await running.stop();
  });

  it("refuses two modules of one name before starting any", async () => {
    const log = recorder();
    const start = startModules(
      [grpcToy("twin", log), withOverrides(grpcToy("twin", log), { TOY_LIMIT: 2 })],
      {
        env: {},
        settings,
        logDestination: logSink(),
      },
    );
    await expect(start).rejects.toThrow("module names must be unique; repeated: twin");
    expect(log.created).toEqual([]);
  });

  it("applies an entry's typed overrides over embed's", async () => {
    const log = recorder();
    const running = await startModules(
      [withOverrides(grpcToy("tuned", log), { TOY_LIMIT: 3, TOY_DOMAIN: "override.example" })],
      { env: {}, settings, logDestination: logSink() },
    );
    expect(running.modules.tuned?.process.config).toMatchObject({
      TOY_LIMIT: 3,
      TOY_DOMAIN: "override.example",
    });
    await running.stop();
  });

  it("lets an override of undefined leave a key embed sets to env", async () => {
    const log = recorder();
    const running = await startModules([withOverrides(grpcToy("operator", log), { TOY_DOMAIN: undefined })], {
      env: { TOY_DOMAIN: "operator.example", METRICS_HOST: "0.0.0.0" },
      settings,
      logDestination: logSink(),
    });
    // The embedder's METRICS_HOST is not the modules': theirs stay on loopback.
    expect(running.modules.operator?.process.config).toMatchObject({
      TOY_DOMAIN: "operator.example",
      METRICS_HOST: "127.0.0.1",
    });
    await running.stop();
  });

  it("hands every module's embed the bus topology of the settings", async () => {
    const bussed = defineServiceModule({
      name: "bussed",
      config: toyConfig.extend({ TOY_STREAM: envString({ default: busTopology().streams.fanOut }) }),
      grpc: true,
      embed: ({ domain, bus }) => ({ TOY_DOMAIN: domain, TOY_STREAM: bus?.streams.fanOut }),
      async create() {
        return { services: [] };
      },
    });
    const namespaced = await startModules([bussed], {
      env: { TOY_STREAM: "FROM_ENV" },
      settings: { ...settings, bus: busTopology("ns1") },
      logDestination: logSink(),
    });
    expect(namespaced.modules.bussed?.process.config).toMatchObject({ TOY_STREAM: "PHOENIX_FANOUT_ns1" });
    await namespaced.stop();
    // Without a topology the module's own variable decides.
    const plain = await startModules([bussed], {
      env: { TOY_STREAM: "FROM_ENV" },
      settings,
      logDestination: logSink(),
    });
    expect(plain.modules.bussed?.process.config).toMatchObject({ TOY_STREAM: "FROM_ENV" });
    await plain.stop();
  });

  it("hands each module its resources by name", async () => {
    testDb = await createTestDatabase();
    const bus = { close: async () => {} } as unknown as Bus;
    const given: string[] = [];
    const module = defineServiceModule({
      name: "stored",
      config: serviceConfig({ serviceName: "stored" }).extend({
        ...databaseConfig.shape,
        ...busConfig.shape,
      }),
      grpc: true,
      storage: {},
      async create({ database, bus: handed, config }) {
        if (database === testDb && handed === bus) given.push(config.DATA_DIR ?? "");
        return {};
      },
    });
    const running = await startModules([module], {
      env: {},
      settings,
      resources: (name) => (name === "stored" ? { database: testDb as TestDatabase, bus } : {}),
      logDestination: logSink(),
    });
    expect(given).toEqual(["/nonexistent"]);
    await running.stop();
  });

  it("when a module fails to start, stops the ones before it and rejects with the cause", async () => {
    const log = recorder();
    const boom = new Error("migrations failed");
    const failing = defineServiceModule({
      name: "broken",
      config: toyConfig,
      grpc: true,
      embed: (s) => ({ TOY_DOMAIN: s.domain }),
      async create({ onShutdown }) {
        onShutdown(() => void log.closed.push("broken's own"), "half-opened");
        throw boom;
      },
    });
    const start = startModules(
      [grpcToy("first", log), httpToy("front", log), failing, grpcToy("never", log)],
      {
        env: {},
        settings,
        logDestination: logSink(),
      },
    );
    await expect(start).rejects.toBeInstanceOf(ModuleStartError);
    const error = await start.catch((e: unknown) => e);
    expect((error as ModuleStartError).message).toBe("broken failed to start: migrations failed");
    expect((error as ModuleStartError).cause).toBe(boom);
    expect(log.created).toEqual(["first", "front"]);
    expect(log.closed).toEqual(["broken's own", "front", "first"]);
  });

  it("rejects with the config error of a module whose env is invalid", async () => {
    const log = recorder();
    const start = startModules([grpcToy("first", log), grpcToy("second", log)], {
      env: { TOY_LIMIT: "0" },
      settings,
      logDestination: logSink(),
    });
    const error = await start.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModuleStartError);
    expect((error as ModuleStartError).cause).toBeInstanceOf(ConfigError);
    expect(((error as ModuleStartError).cause as ConfigError).issues).toEqual([
      { variable: "TOY_LIMIT", reason: "must be at least 1" },
    ]);
    expect(log.created).toEqual([]);
  });

  it("stop() fails naming a module that shut down with a non-zero code, after stopping all", async () => {
    const log = recorder();
    const leaky = defineServiceModule({
      name: "leaky",
      config: toyConfig,
      grpc: true,
      embed: (s) => ({ TOY_DOMAIN: s.domain }),
      async create({ onShutdown }) {
        onShutdown(() => Promise.reject(new Error("still busy")), "worker");
        return {};
      },
    });
    const running = await startModules([grpcToy("first", log), leaky, grpcToy("last", log)], {
      env: {},
      settings,
      logDestination: logSink(),
    });
    const stopped = running.stop();
    await expect(stopped).rejects.toBeInstanceOf(ModuleStopError);
    await expect(stopped).rejects.toThrow("shut down with a non-zero code: leaky (code 1)");
    expect(log.closed).toEqual(["last", "first"]);
  });
});

describe("moduleEnv", () => {
  const listConfig = toyConfig.extend({
    TOY_PROXIES: envAddressList({ optional: true }),
    TOY_PLAIN: envBool({ default: false }),
    TOY_PREFIX: envString({ default: "" }),
  });
  const toy = { name: "toy", config: listConfig };

  it("writes typed values as the env its schema parses back to them", () => {
    const values = {
      TOY_DOMAIN: "toy.example",
      TOY_LIMIT: 3,
      TOY_TICK_MS: 1500,
      TOY_PROXIES: ["127.0.0.1", "::1"],
      TOY_PLAIN: true,
      GRPC_PORT: 0,
      TOY_PREFIX: undefined,
    };
    const env = moduleEnv(toy, values);
    expect(env).toEqual({
      TOY_DOMAIN: "toy.example",
      TOY_LIMIT: "3",
      TOY_TICK_MS: "1500",
      TOY_PROXIES: "127.0.0.1,::1",
      TOY_PLAIN: "true",
      GRPC_PORT: "0",
    });
    const { TOY_PREFIX: _unset, ...set } = values;
    expect(loadConfigOf(listConfig, env)).toMatchObject(set);
  });

  it("refuses a variable outside the schema and a value its variable cannot carry", () => {
    const foreign: Record<string, string> = { TOY_NOPE: "x" };
    expect(() => moduleEnv(toy, foreign)).toThrow("module toy has no config variable TOY_NOPE");
    // A comma inside an entry would come back as two entries; a blank list reads as unset.
    expect(() => moduleEnv(toy, { TOY_PROXIES: [] })).toThrow("TOY_PROXIES");
    expect(() => moduleEnv(toy, { TOY_GREETING: " padded " })).toThrow("TOY_GREETING");
    expect(() => moduleEnv(toy, { TOY_LIMIT: 1.5 })).toThrow("TOY_LIMIT");
  });
});

describe("testConfig", () => {
  it("parses the schema's defaults and applies typed overrides, without env strings", () => {
    const config = testConfig(toyConfig, { TOY_DOMAIN: "t.example", TOY_TICK_MS: 20 });
    expect(config).toMatchObject({
      SERVICE_NAME: "toy",
      TOY_DOMAIN: "t.example",
      TOY_GREETING: "hello",
      TOY_TICK_MS: 20,
      GRPC_PORT: 50051,
    });
  });

  it("still requires the keys without a default", () => {
    expect(() => testConfig(toyConfig)).toThrow(ConfigError);
  });
});

let testDb: TestDatabase | undefined;
afterEach(async () => {
  await testDb?.close();
  testDb = undefined;
});

function listen(server: Server): Promise<Server> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}
