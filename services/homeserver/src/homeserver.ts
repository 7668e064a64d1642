import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import {
  authConfigSchema,
  authModule,
  DATA_DIR_ADMIN_ADDRESS,
  loadOrCreateOperatorKey,
  operatorKeyEntry,
} from "@phoenix/auth";
import { BUS_PAYLOAD, decodeKeyText, PayloadSealer } from "@phoenix/crypto";
import { deliveryModule } from "@phoenix/delivery";
import { edgeGatewayModule } from "@phoenix/edge-gateway";
import { federationGatewayModule, gatewayConfigSchema, loadTls } from "@phoenix/federation-gateway";
import { queueModule } from "@phoenix/queue";
import { type Bus, busTopology, openBus } from "@phoenix/runtime/bus";
import { type BaseConfig, type Env, loadConfig } from "@phoenix/runtime/config";
import { type DatabaseHandle, type EmbeddedStore, openDatabase, redactUrl } from "@phoenix/runtime/db";
import { FederationRouter } from "@phoenix/runtime/federation";
import {
  type RunningService,
  runService,
  type ServiceRuntime,
  type ServiceSetup,
} from "@phoenix/runtime/lifecycle";
import type { CreateLoggerOptions } from "@phoenix/runtime/log";
import { registerBusMetrics } from "@phoenix/runtime/metrics";
import {
  type AnyServiceModule,
  type ModuleEntry,
  type ModuleResources,
  type RunningModules,
  type StartModulesOptions,
  startModules,
  withOverrides,
} from "@phoenix/runtime/module";
import { type HomeserverConfig, homeserverConfigSchema } from "./config.js";
import {
  type DatabaseName,
  EMBEDDED_STORE_DIR,
  embeddedStorePath,
  openEmbeddedStore,
  type StorageLocation,
  serviceDatabase,
} from "./databases.js";
import { loadOrCreateKeyFile } from "./key-file.js";

/** The embedded modules in start order (shutdown runs in reverse), with their database's name. */
const MODULES: readonly { module: AnyServiceModule; database: DatabaseName }[] = [
  { module: authModule, database: "auth" },
  { module: queueModule, database: "queue" },
  { module: deliveryModule, database: "delivery" },
  { module: federationGatewayModule, database: "federation" },
];

/** gRPC addresses (`127.0.0.1:port`) of the embedded services. */
export interface HomeserverAddresses {
  auth: string;
  delivery: string;
  queue: string;
  /** The federation gateway's public (server-to-server) listener. */
  federation: string;
  /** Its internal FederationProxyService listener. */
  federationInternal: string;
  /**
   * The one admin listener (phoenix.admin.v1: the AS's, the QS's and the federation gateway's
   * admin services), on loopback unless ADMIN_GRPC_HOST says otherwise.
   */
  authAdmin: string;
}

/** What {@link setupHomeserver} hands to `runService`, plus where everything listens. */
export interface HomeserverSetup extends ServiceSetup {
  /** The public REST/WebSocket base URL (`http://host:port`). */
  url: string;
  addresses: HomeserverAddresses;
}

/**
 * The all-in-one homeserver as a `runService` setup: opens the databases (one embedded PGlite
 * store under `DATA_DIR` with a schema per service, or `<prefix><service>` on the `DATABASE_URL`
 * server) and the bus (NATS, or the embedded bus beside the services' data), then starts the modules AS, QS, DS and federation
 * gateway on loopback gRPC ports and the edge gateway on the public HTTP port. Shutdown runs in
 * reverse: edge gateway, federation gateway, DS, QS, AS, router, bus, databases. `env` supplies
 * the modules' own variables (`AS_*`, `DS_*`, `QS_*`, `FEDERATION_*`, `EDGE_*`); the modules log
 * to `logDestination` (default stdout).
 */
export async function setupHomeserver(
  runtime: ServiceRuntime<HomeserverConfig>,
  env: Env = process.env,
  logDestination?: LogDestination,
): Promise<HomeserverSetup> {
  const { config, metrics, onShutdown } = runtime;
  const dataDir = resolve(config.DATA_DIR);
  // The federation gateway's transport rule (TLS, or plaintext only on a loopback listener or by
  // explicit opt-in), checked before anything opens: the gateway starts last, after the slow part.
  loadTls({ ...loadConfig(FEDERATION_TRANSPORT, env), GRPC_HOST: config.FEDERATION_HOST });
  await mkdir(dataDir, { recursive: true, mode: 0o700 });

  const { databases, busDb } = await openDatabases(runtime, dataDir);
  const bus = await openSharedBus(runtime, dataDir, busDb);
  // The lag of every module's durables, on this process's endpoint (the modules' own are not exposed).
  registerBusMetrics(metrics.registry, bus);
  // One federation router for AS, DS and QS: requests about other domains go to the federation
  // gateway's internal listener, which starts after them (its module connects the router).
  // Registered before the modules, it closes after they stopped.
  const router = new FederationRouter({
    localDomain: config.HOMESERVER_DOMAIN,
    maxMessageBytes: config.GRPC_MAX_MESSAGE_BYTES,
  });
  onShutdown(() => router.close(), "federation router");

  const resources = (name: string): ModuleResources =>
    name === edgeGatewayModule.name
      ? // The edge gateway's metrics are the homeserver's (its endpoint shows them).
        { metrics }
      : { database: databases.get(name), bus, router };
  // AS, QS, DS, federation gateway and edge gateway, each through the runtime lifecycle
  // without signal handlers of its own: this process's runService owns the signals.
  const running = await startModules(await moduleEntries(config, env, dataDir), {
    env,
    settings: moduleSettings(config, dataDir),
    resources,
    // One admin listener and one operator key for the AS, QS and federation gateway admin APIs.
    sharedAdminListener: true,
    ...(logDestination ? { logDestination } : {}),
  });
  // Each module is a resource of this process, registered in start order so that shutdown stops
  // them in reverse (the front door first) before the router, bus and databases close.
  for (const started of Object.values(running.modules)) {
    onShutdown(
      async () => {
        const code = await started.process.shutdown("homeserver shutdown");
        if (code !== 0) throw new Error(`${started.name} shut down with code ${code}`);
      },
      started.name.replace("-", " "),
    );
  }
  // `phoenix-admin --data-dir` finds the admin listener here (its port is free-picked by default).
  await writeFile(join(dataDir, DATA_DIR_ADMIN_ADDRESS), `${published(running.addresses, "authAdmin")}\n`, {
    mode: 0o600,
  });
  // This process's own gRPC listener serves grpc.health.v1 only.
  return { services: [], url: published(running.addresses, "http"), addresses: addressesOf(running, config) };
}

/**
 * The databases: on PGlite one embedded store (`<dataDir>/pglite/homeserver`) holding every
 * service in a schema of its own, on Postgres one database per service, opened in parallel. Every
 * one that opened is registered for shutdown before a failure of another is reported. Without
 * `NATS_URL` the embedded bus gets one too (`busDb`).
 */
async function openDatabases(
  { config, logger, onShutdown }: ServiceRuntime<HomeserverConfig>,
  dataDir: string,
): Promise<{ databases: Map<string, DatabaseHandle | undefined>; busDb: DatabaseHandle | undefined }> {
  const location: StorageLocation = config.DATABASE_URL
    ? { kind: "postgres", serverUrl: config.DATABASE_URL, prefix: config.HOMESERVER_DATABASE_PREFIX }
    : { kind: "pglite", dataDir };
  let store: EmbeddedStore | undefined;
  if (location.kind === "pglite") {
    const path = await embeddedStorePath(dataDir);
    logger.info(`opening the embedded database in ${path}`);
    store = await openEmbeddedStore(path);
    // Registered first, it closes after every namespace's handle.
    onShutdown(() => store?.close(), "embedded database");
  } else {
    logger.info(`opening databases ${location.prefix}* on ${redactUrl(location.serverUrl)}`);
  }
  const open = async (name: DatabaseName, migrationsFolder?: string): Promise<DatabaseHandle> => {
    const handle = await openDatabase({
      ...(store
        ? { driver: "pglite" as const, shared: { store, namespace: name } }
        : await serviceDatabase(location, name)),
      ...(migrationsFolder ? { migrationsFolder } : {}),
    });
    onShutdown(handle, `${name} database`);
    return handle;
  };
  const opened = await allOpened([
    ...MODULES.map(({ module, database }) => open(database, module.storage?.migrationsFolder)),
    config.NATS_URL ? Promise.resolve(undefined) : open("bus"),
  ]);
  return {
    databases: new Map(MODULES.map(({ module }, i) => [module.name, opened[i]])),
    busDb: opened[MODULES.length],
  };
}

/**
 * One bus for every module: the embedded bus wakes listeners only within its process.
 * Its messages (fan-outs with commits, KeyPackages, leaf credentials) are sealed under a key
 * outside the bus database: acknowledged rows are deleted, but deleted rows stay in the PGlite
 * files until overwritten.
 */
async function openSharedBus(
  { config, logger, onShutdown }: ServiceRuntime<HomeserverConfig>,
  dataDir: string,
  busDb: DatabaseHandle | undefined,
): Promise<Bus> {
  const busSealer = busDb
    ? new PayloadSealer(
        BUS_PAYLOAD,
        "BUS_PAYLOAD_KEY",
        decodeKeyText(
          config.BUS_PAYLOAD_KEY ?? (await loadOrCreateKeyFile(join(dataDir, "bus", "payload.key"))),
          "BUS_PAYLOAD_KEY",
        ),
      )
    : undefined;
  const bus: Bus = await openBus(config, {
    name: config.SERVICE_NAME,
    ...(busDb ? { db: busDb.db } : {}),
    ...(busSealer ? { sealer: busSealer } : {}),
    onError: (err) => logger.warn({ err }, "bus"),
  });
  onShutdown(bus, "bus");
  return bus;
}

/** The modules in start order with the homeserver's overrides of their variables. */
async function moduleEntries(config: HomeserverConfig, env: Env, dataDir: string): Promise<ModuleEntry[]> {
  // The services' secrets (key-encryption and replay-marker keys), which the five-process
  // deployment must get from secrets: the all-in-one keeps a generated one in its data directory
  // unless the operator sets the variable (docs/running.md).
  const secret = async (variable: string, file: string): Promise<string | undefined> =>
    env[variable] ? undefined : await loadOrCreateKeyFile(join(dataDir, file));
  // The modules trust the in-process gateways on loopback unless the operator lists proxies.
  const operators = (variable: string): Record<string, undefined> =>
    env[variable]?.trim() ? { [variable]: undefined } : {};
  // The operator key `phoenix-admin --data-dir` signs with, created on first start (0600); the
  // operator's own ADMIN_OPERATOR_KEYS are accepted besides it.
  const operatorKey = await loadOrCreateOperatorKey(dataDir);
  const operatorKeys = [
    ...loadConfig(authConfigSchema.pick({ ADMIN_OPERATOR_KEYS: true }), env).ADMIN_OPERATOR_KEYS,
    operatorKeyEntry(operatorKey),
  ];
  return [
    withOverrides(authModule, {
      AS_KEY_ENCRYPTION_KEY: await secret("AS_KEY_ENCRYPTION_KEY", join("auth", "key-encryption.key")),
      ...operators("AS_TRUSTED_PROXIES"),
      ADMIN_OPERATOR_KEYS: operatorKeys,
      // The shared admin listener (the AS's settings, the first module serving admin RPCs)
      // stays on a free loopback port unless the operator sets these.
      ...(env.ADMIN_GRPC_PORT?.trim() ? { ADMIN_GRPC_PORT: undefined } : {}),
      ...(env.ADMIN_GRPC_HOST?.trim() ? { ADMIN_GRPC_HOST: undefined } : {}),
    }),
    // Keys wrapped under `$DATA_DIR/queue/storage.key` unless QS_STORAGE_KEY is set.
    withOverrides(queueModule, { ...operators("QS_TRUSTED_PROXIES"), ADMIN_OPERATOR_KEYS: operatorKeys }),
    withOverrides(deliveryModule, {
      DS_REPLAY_MARKER_KEY: await secret("DS_REPLAY_MARKER_KEY", join("delivery", "replay-marker.key")),
      ...operators("DS_TRUSTED_PROXIES"),
    }),
    // With the default allowlist policy and no allowed domains it federates with nobody.
    // Without TLS files it runs in plaintext only while FEDERATION_HOST is a loopback address
    // (default) or with the operator's explicit FEDERATION_INSECURE_PLAINTEXT=true; bound
    // elsewhere without either, the gateway refuses to start (docs/federation.md).
    withOverrides(federationGatewayModule, {
      FEDERATION_KEY_ENCRYPTION_KEY: await secret(
        "FEDERATION_KEY_ENCRYPTION_KEY",
        join("federation", "key-encryption.key"),
      ),
      GRPC_HOST: config.FEDERATION_HOST,
      GRPC_PORT: config.FEDERATION_PORT,
      ADMIN_OPERATOR_KEYS: operatorKeys,
    }),
    // The public port; the EDGE_* variables configure the rest.
    withOverrides(edgeGatewayModule, { HTTP_HOST: config.HTTP_HOST, HTTP_PORT: config.HTTP_PORT }),
  ];
}

/** What every embedded module gets from the homeserver's config. */
function moduleSettings(config: HomeserverConfig, dataDir: string): StartModulesOptions["settings"] {
  return {
    domain: config.HOMESERVER_DOMAIN,
    dataDir,
    logLevel: config.SERVICES_LOG_LEVEL,
    // Modules drain within half the homeserver's grace, so the whole shutdown fits in it.
    shutdownGraceMs: Math.floor(config.SHUTDOWN_GRACE_MS / 2),
    // Without a namespace the modules' own variables (`DS_FANOUT_STREAM`, …) decide.
    ...(config.HOMESERVER_BUS_NAMESPACE !== undefined
      ? { bus: busTopology(config.HOMESERVER_BUS_NAMESPACE) }
      : {}),
  };
}

/** Where the started modules' gRPC services listen. */
function addressesOf(running: RunningModules, config: HomeserverConfig): HomeserverAddresses {
  const { addresses } = running;
  const federation = running.modules[federationGatewayModule.name];
  return {
    auth: published(addresses, authModule.name),
    delivery: published(addresses, deliveryModule.name),
    queue: published(addresses, queueModule.name),
    federation: `${config.FEDERATION_HOST}:${federation?.grpcPort}`,
    federationInternal: published(addresses, "federationInternal"),
    authAdmin: published(addresses, "authAdmin"),
  };
}

/** An address a started module published (a missing one is a wiring mistake). */
function published(addresses: Readonly<Record<string, string>>, key: string): string {
  const address = addresses[key];
  if (address === undefined) throw new Error(`no module published ${key}`);
  return address;
}

/** The gateway variables that decide its transport (checked up front by {@link setupHomeserver}). */
const FEDERATION_TRANSPORT = gatewayConfigSchema.pick({
  FEDERATION_TLS_CERT_FILE: true,
  FEDERATION_TLS_KEY_FILE: true,
  FEDERATION_TLS_CA_FILE: true,
  FEDERATION_MTLS: true,
  FEDERATION_INSECURE_PLAINTEXT: true,
});

/** Waits for all, then throws the first failure (so every success is registered first). */
async function allOpened<T>(pending: readonly Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(pending);
  const failed = settled.find((result) => result.status === "rejected");
  if (failed) throw failed.reason;
  return settled.map((result) => (result as PromiseFulfilledResult<T>).value);
}

/** Where log lines go (a pino destination: anything with `write(line)`). */
export type LogDestination = NonNullable<CreateLoggerOptions["destination"]>;

/** Options of {@link startHomeserver}. */
export interface StartHomeserverOptions {
  /** The environment (default `process.env`); flags are folded in by the caller. */
  env?: Env;
  /** Where the homeserver and its services log (default stdout); tests collect the lines. */
  logDestination?: LogDestination;
  /**
   * Own the process (main.ts): SIGTERM/SIGINT shut down, the process exits with the shutdown's
   * code. Default false: no signal handlers, no exit (tests, tools).
   */
  ownProcess?: boolean;
}

/** The homeserver running in this process. */
export interface RunningHomeserver {
  url: string;
  addresses: HomeserverAddresses;
  runtime: RunningService<HomeserverConfig & BaseConfig>;
  /** Graceful shutdown; rejects if something failed to close. */
  stop(): Promise<void>;
}

/**
 * Runs the homeserver through `runService` and logs the ready line (with every address) once
 * everything listens. Embedded by default; `ownProcess` for main.ts.
 */
export async function startHomeserver(options: StartHomeserverOptions = {}): Promise<RunningHomeserver> {
  const env = options.env ?? process.env;
  let built: HomeserverSetup | undefined;
  const runtime = await runService({
    config: homeserverConfigSchema,
    env,
    ...(options.ownProcess ? {} : { signals: false as const, exit: false as const }),
    ...(options.logDestination ? { logDestination: options.logDestination } : {}),
    async setup(rt) {
      built = await setupHomeserver(rt, env, options.logDestination);
      return built;
    },
  });
  if (built === undefined) throw new Error("runService returned without running setup");
  const { config, logger } = runtime;
  logger.info(
    {
      url: built.url,
      domain: config.HOMESERVER_DOMAIN,
      storage: config.DATABASE_URL ? "postgres" : join(resolve(config.DATA_DIR), EMBEDDED_STORE_DIR),
      bus: config.NATS_URL ? "nats" : "embedded",
      services: built.addresses,
    },
    `homeserver ready: ${built.url} (domain ${config.HOMESERVER_DOMAIN})`,
  );
  return {
    url: built.url,
    addresses: built.addresses,
    runtime,
    async stop() {
      const code = await runtime.shutdown("stop");
      if (code !== 0) throw new Error(`the homeserver shut down with code ${code}`);
    },
  };
}
