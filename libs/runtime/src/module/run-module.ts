import type { z } from "zod";
import type { BusConfig } from "../bus/config.js";
import type { BaseConfig } from "../config/base-config.js";
import type { Env } from "../config/load-config.js";
import type { DatabaseConfig } from "../db/config.js";
import {
  type RunningProcess,
  type RunningService,
  type RunServiceCommonOptions,
  runService,
  type ServiceRuntime,
  type ServiceSetup,
} from "../lifecycle/run-service.js";
import { openServiceStorage, openWatchedDatabase } from "../lifecycle/service-storage.js";
import { type AdminListenerConfig, openAdminListener, startAdminListener } from "./admin-listener.js";
import type {
  AnyServiceModule,
  EmbedSettings,
  ModuleHost,
  ModuleInstance,
  ModuleResources,
  ModuleStorage,
  ServiceModule,
} from "./service-module.js";
import type { Worker } from "./worker.js";

/** Options of {@link runModule}: runService's (env, signals, exit, log destination) and resources. */
export interface RunModuleOptions<C>
  extends Omit<RunServiceCommonOptions<z.ZodObject>, "config" | "overrides" | "metrics"> {
  /** Handed-in database, bus, federation router or metrics, used instead of opening them; the caller closes them. */
  resources?: ModuleResources;
  /** Typed config values replacing their env variables (see `loadConfig`). */
  overrides?: Partial<C>;
  /**
   * False: the module's admin services are not served by a listener of its own (an embedder
   * serves every module's on one listener, see `StartModulesOptions.sharedAdminListener`).
   */
  adminListener?: boolean;
}

/** A module started by {@link runModule} or {@link startModules}. */
export interface RunningModule<C extends BaseConfig = BaseConfig, I extends ModuleInstance = ModuleInstance> {
  readonly name: string;
  /** runService's handle: config, logger, metrics, `shutdown()`, `finished`. */
  readonly process: RunningProcess<C>;
  /** The gRPC listener's port (gRPC modules only). */
  readonly grpcPort: number | undefined;
  /** The admin listener's port, when the module serves admin RPCs and ADMIN_GRPC_PORT is set. */
  readonly adminPort: number | undefined;
  /** What `create` returned. */
  readonly instance: I;
  /** What this module publishes: `{ [name]: "host:port" }` of its gRPC listener and the instance's addresses. */
  readonly addresses: Readonly<Record<string, string>>;
}

/**
 * Runs a module through `runService`: config from env (defaults from the module's schema),
 * logger, metrics endpoint, signals and graceful shutdown; opens its declared storage (database
 * migrated, bus) unless handed in, then `create`. A service's `main.ts` is `await runModule(m)`.
 * A bad config or a failing `create` logs why, releases what was opened and exits 1.
 */
export async function runModule<
  S extends z.ZodObject,
  St extends ModuleStorage | undefined,
  I extends ModuleInstance,
>(
  module: ServiceModule<S, St, I>,
  options: RunModuleOptions<z.output<S> & BaseConfig> = {},
): Promise<RunningModule<z.output<S> & BaseConfig, I>> {
  type C = z.output<S> & BaseConfig;
  const resources = options.resources ?? {};
  let instance: I | undefined;
  let adminPort: number | undefined;
  const build = async (runtime: ServiceRuntime<C>): Promise<I> => {
    instance = await module.create(await hostFor(module, runtime, resources));
    await startWorkers(instance.workers ?? [], runtime);
    if (instance.admin !== undefined && instance.admin.services.length > 0 && options.adminListener !== false)
      adminPort = await startAdminListener(runtime, module.name, instance.admin);
    return instance;
  };
  const common = {
    config: module.config,
    ...(options.env !== undefined ? { env: options.env } : {}),
    ...(options.signals !== undefined ? { signals: options.signals } : {}),
    ...(options.exit !== undefined ? { exit: options.exit } : {}),
    ...(options.logDestination !== undefined ? { logDestination: options.logDestination } : {}),
    ...(options.overrides !== undefined ? { overrides: options.overrides } : {}),
    ...(resources.metrics !== undefined ? { metrics: resources.metrics } : {}),
  };
  let handle: RunningProcess<C>;
  let grpcPort: number | undefined;
  if (module.grpc) {
    const service: RunningService<C> = await runService({
      ...common,
      async setup(runtime): Promise<ServiceSetup> {
        const built = await build(runtime);
        // No services: the listener serves grpc.health.v1 only.
        return { ...built, services: built.services ?? [] };
      },
    });
    handle = service;
    grpcPort = service.grpcPort;
  } else {
    handle = await runService({
      ...common,
      grpc: false,
      async setup(runtime) {
        const built = await build(runtime);
        if (built.services !== undefined && built.services.length > 0) {
          // Services nobody would serve: a wiring mistake, not something to start without.
          throw new TypeError(`module ${module.name} returned gRPC services but is declared grpc: false`);
        }
      },
    });
  }
  if (instance === undefined) throw new Error("runService returned without running setup");
  const published: Record<string, string> = {};
  if (grpcPort !== undefined) published[module.name] = dialAddress(handle.config.GRPC_HOST, grpcPort);
  if (adminPort !== undefined) {
    const adminHost = (handle.config as { ADMIN_GRPC_HOST?: string }).ADMIN_GRPC_HOST ?? "127.0.0.1";
    published[`${module.name}Admin`] = dialAddress(adminHost, adminPort);
  }
  return {
    name: module.name,
    process: handle,
    grpcPort,
    adminPort,
    instance,
    addresses: { ...published, ...instance.addresses },
  };
}

/** One module for {@link startModules}, with typed config values of its own on top of `embed`'s. */
export interface ModuleEntry {
  readonly module: AnyServiceModule;
  readonly overrides: Readonly<Record<string, unknown>>;
}

/**
 * Pairs a module with typed config values for {@link startModules} (e.g. the public listener
 * of the all-in-one homeserver), applied after `embed`'s. A key given as `undefined` is left to
 * env even where `embed` sets it (an operator's variable that wins over the embedded default).
 */
export function withOverrides<
  S extends z.ZodObject,
  St extends ModuleStorage | undefined,
  I extends ModuleInstance,
>(module: ServiceModule<S, St, I>, overrides: Partial<z.output<S> & BaseConfig>): ModuleEntry {
  return { module, overrides };
}

/** Options of {@link startModules}. */
export interface StartModulesOptions {
  /** Every module's own variables (`AS_*`, `EDGE_*`, …); default `process.env`. */
  env?: Env;
  /** The typed settings every module's `embed` maps; `addresses` grows as modules start. */
  settings: Omit<EmbedSettings, "addresses"> & { addresses?: Readonly<Record<string, string>> };
  /** Resources handed to a module by name (a shared bus, its database, the federation router). */
  resources?: (name: string) => ModuleResources;
  /** Where every module logs (default stdout). */
  logDestination?: RunServiceCommonOptions<z.ZodObject>["logDestination"];
  /**
   * One admin listener for every module that serves admin RPCs, instead of one each: it binds
   * where the first such module's ADMIN_GRPC_HOST / ADMIN_GRPC_PORT say (embedded: a free
   * loopback port), serves all their admin services, is published as `admin` and as
   * `<first module>Admin`, and stops before the modules.
   */
  sharedAdminListener?: boolean;
}

/** Modules running in this process. */
export interface RunningModules {
  /** By module name, in start order. */
  readonly modules: Readonly<Record<string, RunningModule>>;
  /** Everything the modules published, plus the settings' initial addresses. */
  readonly addresses: Readonly<Record<string, string>>;
  /** The shared admin listener's port (`sharedAdminListener` and a module serving admin RPCs). */
  readonly adminPort: number | undefined;
  /** Shuts the modules down in reverse start order; rejects naming each that shut down with a non-zero code. */
  stop(): Promise<void>;
}

/** A module embedded by {@link startModules} failed to start; the modules before it are stopped. */
export class ModuleStartError extends Error {
  override readonly name = "ModuleStartError";
}

/** A module embedded by {@link startModules} shut down with a non-zero code. */
export class ModuleStopError extends Error {
  override readonly name = "ModuleStopError";
}

/**
 * Starts modules in one process, in order, each through `runService` without signal handlers or
 * exit (the embedder owns the process): its config is env parsed with its schema except the
 * keys the runner, `embed` and the entry's overrides set as typed values. The runner sets
 * `SERVICE_NAME` (the module's name), `LOG_LEVEL`, a free loopback gRPC port, a free loopback
 * metrics port, `SHUTDOWN_GRACE_MS` and `DATA_DIR` from the settings. Each module sees the addresses
 * published by those before it. When one fails to start, the ones before it are stopped and the
 * promise rejects with a {@link ModuleStartError} whose `cause` is the failure.
 */
export async function startModules(
  entries: readonly (AnyServiceModule | ModuleEntry)[],
  options: StartModulesOptions,
): Promise<RunningModules> {
  const names = entries.map((entry) => ("module" in entry ? entry.module : entry).name);
  const twice = names.filter((name, i) => names.indexOf(name) !== i);
  if (twice.length > 0) {
    // Names key the running modules and their published addresses: a second one would shadow the first.
    throw new TypeError(`module names must be unique; repeated: ${[...new Set(twice)].join(", ")}`);
  }
  const addresses: Record<string, string> = { ...options.settings.addresses };
  const started: RunningModule[] = [];
  let shared: SharedAdminListener | undefined;
  const stopAll = async (reason: string): Promise<string[]> => {
    const failed: string[] = [];
    await shared?.stop();
    shared = undefined;
    // The last started may depend on the earlier ones (the edge gateway on AS, DS and QS).
    for (const running of [...started].reverse()) {
      const code = await running.process.shutdown(reason);
      if (code !== 0) failed.push(`${running.name} (code ${code})`);
    }
    started.length = 0;
    return failed;
  };
  for (const entry of entries) {
    const { module, overrides } = "module" in entry ? entry : { module: entry, overrides: {} };
    const settings: EmbedSettings = { ...options.settings, addresses: { ...addresses } };
    try {
      const running = await runModule(module, {
        ...(options.env !== undefined ? { env: options.env } : {}),
        signals: false,
        exit: false,
        ...(options.logDestination !== undefined ? { logDestination: options.logDestination } : {}),
        ...(options.resources ? { resources: options.resources(module.name) } : {}),
        overrides: { ...embedBase(module, settings), ...definedOnly(module.embed?.(settings)), ...overrides },
        ...(options.sharedAdminListener ? { adminListener: false } : {}),
      });
      started.push(running);
      Object.assign(addresses, running.addresses);
    } catch (error) {
      await stopAll(`${module.name} failed to start`);
      const cause = error instanceof Error && error.cause !== undefined ? error.cause : error;
      const message = cause instanceof Error ? cause.message : String(cause);
      throw new ModuleStartError(`${module.name} failed to start: ${message}`, { cause });
    }
  }
  if (options.sharedAdminListener) {
    try {
      shared = await startSharedAdminListener(started);
    } catch (error) {
      await stopAll("the admin listener failed to start");
      throw new ModuleStartError(`the admin listener failed to start: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (shared) Object.assign(addresses, shared.addresses);
  }
  const modules = Object.fromEntries(started.map((running) => [running.name, running]));
  let stopping: Promise<void> | undefined;
  return {
    modules,
    addresses: { ...addresses },
    adminPort: shared?.port,
    stop() {
      stopping ??= stopAll("stop").then((failed) => {
        if (failed.length > 0)
          throw new ModuleStopError(`shut down with a non-zero code: ${failed.join(", ")}`);
      });
      return stopping;
    },
  };
}

/**
 * Starts a module's workers in order, each registered for shutdown once it started: registered
 * after everything `create` registered, they stop first, in reverse order. When one fails to
 * start, runService's failed start closes what was registered (the workers started before it,
 * then the module's resources) and reports the failure.
 */
async function startWorkers(workers: readonly Worker[], runtime: ServiceRuntime<BaseConfig>): Promise<void> {
  for (const worker of workers) {
    try {
      await worker.start();
    } catch (error) {
      runtime.logger.error({ worker: worker.name, err: error }, "worker failed to start");
      throw error;
    }
    runtime.onShutdown(() => worker.stop(), `worker ${worker.name}`);
    runtime.logger.debug({ worker: worker.name }, "worker started");
  }
}

/** The one admin listener of {@link startModules} with `sharedAdminListener`. */
interface SharedAdminListener {
  port: number;
  addresses: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * Serves every started module's admin services on one listener, configured by the first module
 * that has them; undefined when none has, or when that module's ADMIN_GRPC_PORT is unset.
 */
async function startSharedAdminListener(
  started: readonly RunningModule[],
): Promise<SharedAdminListener | undefined> {
  const serving = started.filter(
    (m) => m.instance.admin !== undefined && m.instance.admin.services.length > 0,
  );
  const first = serving[0];
  if (first === undefined) return undefined;
  const config = first.process.config as BaseConfig & Partial<AdminListenerConfig>;
  const translators = serving.flatMap((m) =>
    m.instance.admin?.translateError ? [m.instance.admin.translateError] : [],
  );
  const listener = await openAdminListener(config, first.process.logger, first.name, {
    services: serving.flatMap((m) => m.instance.admin?.services ?? []),
    // Each module's translation of its own errors; the first that knows an error wins.
    ...(translators.length > 0
      ? { translateError: (error: unknown) => translators.map((t) => t(error)).find((e) => e !== undefined) }
      : {}),
  });
  if (listener === undefined) return undefined;
  const address = dialAddress(config.ADMIN_GRPC_HOST ?? "127.0.0.1", listener.port);
  return {
    port: listener.port,
    addresses: { admin: address, [`${first.name}Admin`]: address },
    async stop() {
      await listener.server.shutdown({ graceMs: config.SHUTDOWN_GRACE_MS });
    },
  };
}

/** The config values the runner sets for every embedded module. */
function embedBase(module: AnyServiceModule, settings: EmbedSettings): Record<string, unknown> {
  return {
    SERVICE_NAME: module.name,
    LOG_LEVEL: settings.logLevel,
    GRPC_HOST: "127.0.0.1",
    GRPC_PORT: 0,
    // The embedder's METRICS_HOST is its own endpoint's; the modules' endpoints stay on loopback.
    METRICS_HOST: "127.0.0.1",
    METRICS_PORT: 0,
    SHUTDOWN_GRACE_MS: settings.shutdownGraceMs,
    ...("DATA_DIR" in module.config.shape ? { DATA_DIR: settings.dataDir } : {}),
    // Embedded, an admin listener is on, on a free loopback port (an entry's overrides may fix it).
    ...("ADMIN_GRPC_PORT" in module.config.shape ? { ADMIN_GRPC_HOST: "127.0.0.1", ADMIN_GRPC_PORT: 0 } : {}),
  };
}

/** `embed`'s values without its undefined ones (those stay env's). */
function definedOnly(values: Readonly<Record<string, unknown>> | undefined): Record<string, unknown> {
  return Object.fromEntries(Object.entries(values ?? {}).filter(([, value]) => value !== undefined));
}

/** The keys a module's schema needs for the storage it declares. */
const STORAGE_KEYS = ["DATABASE_URL", "DATA_DIR"] as const;
const BUS_KEYS = ["NATS_URL"] as const;

/** Builds the module's host: the runtime plus its declared storage (opened unless handed in). */
async function hostFor<S extends z.ZodObject, St extends ModuleStorage | undefined>(
  module: ServiceModule<S, St, ModuleInstance>,
  runtime: ServiceRuntime<z.output<S> & BaseConfig>,
  resources: ModuleResources,
): Promise<ModuleHost<z.output<S> & BaseConfig, St>> {
  const host = { ...runtime, ...(resources.router ? { router: resources.router } : {}) };
  const storage: ModuleStorage | undefined = module.storage;
  // `ModuleStorageOf<St>` cannot be narrowed from a runtime check of `module.storage`; each
  // return below carries exactly the resources that type names for the declared storage.
  type Host = ModuleHost<z.output<S> & BaseConfig, St>;
  if (storage === undefined) return host as unknown as Host;
  const withBus = storage.bus !== false;
  const lacking = [...STORAGE_KEYS, ...(withBus ? BUS_KEYS : [])].filter(
    (key) => !(key in module.config.shape),
  );
  if (lacking.length > 0) {
    // Opening would fail later with "no database configured", which hides the wiring mistake.
    throw new TypeError(
      `module ${module.name} declares storage but its config schema lacks ${lacking.join(", ")}`,
    );
  }
  // The schema has the database and bus fields (checked above), so the config has their values.
  const storageRuntime = runtime as unknown as ServiceRuntime<BaseConfig & DatabaseConfig & BusConfig>;
  const migrations =
    storage.migrationsFolder !== undefined ? { migrationsFolder: storage.migrationsFolder } : {};
  if (withBus) {
    const { database, bus } = await openServiceStorage(
      storageRuntime,
      { name: module.name, ...migrations },
      resources,
    );
    return { ...host, database, bus } as unknown as Host;
  }
  const database =
    resources.database ?? (await openWatchedDatabase(storageRuntime, { name: module.name, ...migrations }));
  return { ...host, database } as unknown as Host;
}

/** A dialable `host:port` for a listener: wildcard hosts become loopback, IPv6 is bracketed. */
function dialAddress(host: string, port: number): string {
  const dialHost = host === "0.0.0.0" || host === "" ? "127.0.0.1" : host === "::" ? "::1" : host;
  return dialHost.includes(":") ? `[${dialHost}]:${port}` : `${dialHost}:${port}`;
}
