import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { authConfigSchema, authMigrationsFolder, createAuthService } from "@phoenix/auth";
import { BUS_PAYLOAD, decodeKeyText, PayloadSealer } from "@phoenix/crypto";
import { DELIVERY_MIGRATIONS, startDelivery } from "@phoenix/delivery";
import { edgeGatewayConfig, startEdgeGateway } from "@phoenix/edge-gateway";
import {
  GATEWAY_MIGRATIONS,
  gatewayConfigSchema,
  loadTls,
  startFederationGateway,
} from "@phoenix/federation-gateway";
import { fileDescriptorSet } from "@phoenix/proto";
import { type QsStreams, QUEUE_MIGRATIONS, queueConfigSchema, setupQueue } from "@phoenix/queue";
import { type Bus, busTopology, openBus } from "@phoenix/runtime/bus";
import { type BaseConfig, type Env, loadConfig } from "@phoenix/runtime/config";
import { type DatabaseHandle, openDatabase, redactUrl } from "@phoenix/runtime/db";
import { FederationRouter } from "@phoenix/runtime/federation";
import {
  type RunningService,
  runService,
  type ServiceRuntime,
  type ServiceSetup,
} from "@phoenix/runtime/lifecycle";
import type { CreateLoggerOptions } from "@phoenix/runtime/log";
import { type HomeserverConfig, homeserverConfigSchema } from "./config.js";
import { type DatabaseName, type StorageLocation, serviceDatabase } from "./databases.js";
import { loadOrCreateKeyFile } from "./key-file.js";

/** The bus names a homeserver hands its embedded services, and the service variables that set them. */
export interface BusOverrides {
  /** `""` (the deployment defaults) or `<namespace>.`. */
  subjectPrefix: string;
  /** For `setupQueue`; empty without a namespace, so the QS's own `QS_*_STREAM` variables decide. */
  streams: Partial<QsStreams>;
  deliveryEnv: Record<string, string>;
  federationEnv: Record<string, string>;
}

/**
 * The overrides of HOMESERVER_BUS_NAMESPACE, from the namespaced bus topology. Without a
 * namespace none: the services' own variables (`DS_FANOUT_STREAM`, …) still apply.
 */
export function busOverrides(namespace: string | undefined): BusOverrides {
  if (namespace === undefined) {
    return { subjectPrefix: "", streams: {}, deliveryEnv: {}, federationEnv: {} };
  }
  const { subjectPrefix, streams, subjects } = busTopology(namespace);
  return {
    subjectPrefix,
    streams,
    deliveryEnv: {
      DS_FANOUT_SUBJECT: subjects.fanOut,
      DS_FANOUT_STREAM: streams.fanOut,
      DS_QUEUE_DELETED_SUBJECT: subjects.queueDeleted,
      DS_QUEUE_DELETED_STREAM: streams.queueDeleted,
    },
    federationEnv: {
      FEDERATION_SUBJECT_PREFIX: subjectPrefix,
      FEDERATION_FANOUT_STREAM: streams.fanOut,
      FEDERATION_QUEUE_DELETED_STREAM: streams.queueDeleted,
      FEDERATION_OUTBOUND_STREAM: streams.federation,
    },
  };
}

/** gRPC addresses (`127.0.0.1:port`) of the embedded services. */
export interface HomeserverAddresses {
  auth: string;
  delivery: string;
  queue: string;
  /** The federation gateway's public (server-to-server) listener. */
  federation: string;
  /** Its internal FederationProxyService listener. */
  federationInternal: string;
}

/** What {@link setupHomeserver} hands to `runService`, plus where everything listens. */
export interface HomeserverSetup extends ServiceSetup {
  /** The public REST/WebSocket base URL (`http://host:port`). */
  url: string;
  addresses: HomeserverAddresses;
}

/**
 * The all-in-one homeserver as a `runService` setup: opens one database per service (PGlite
 * under `DATA_DIR`, or `<prefix><service>` on the `DATABASE_URL` server) and the bus (NATS, or the
 * embedded bus in a database of its own), starts AS, QS, DS and the federation gateway on
 * loopback gRPC ports and the edge gateway on the public HTTP port. Shutdown runs in reverse:
 * edge gateway, federation gateway, DS, QS, AS, bus, databases. `env` supplies the services'
 * own variables (`AS_*`, `DS_*`, `QS_*`, `FEDERATION_*`, `EDGE_*`); the embedded services log to
 * `logDestination` (default stdout).
 */
export async function setupHomeserver(
  runtime: ServiceRuntime<HomeserverConfig>,
  env: Env = process.env,
  logDestination?: LogDestination,
): Promise<HomeserverSetup> {
  const logTo = logDestination ? { logDestination } : {};
  const { config, logger, metrics, onShutdown } = runtime;
  const domain = config.HOMESERVER_DOMAIN;
  const dataDir = resolve(config.DATA_DIR);
  // The federation gateway's transport rule (TLS, or plaintext only on a loopback listener or by
  // explicit opt-in), checked before anything opens: the gateway starts last, after the slow part.
  loadTls({ ...loadConfig(FEDERATION_TRANSPORT, env), GRPC_HOST: config.FEDERATION_HOST });
  await mkdir(dataDir, { recursive: true, mode: 0o700 });

  // 1. Databases, opened in parallel (a fresh PGlite costs seconds each); every one that opened
  // is registered for shutdown before a failure of another is reported.
  const location: StorageLocation = config.DATABASE_URL
    ? { kind: "postgres", serverUrl: config.DATABASE_URL, prefix: config.HOMESERVER_DATABASE_PREFIX }
    : { kind: "pglite", dataDir };
  if (location.kind === "pglite") await mkdir(join(dataDir, "pglite"), { recursive: true, mode: 0o700 });
  logger.info(
    location.kind === "pglite"
      ? `opening PGlite databases in ${join(dataDir, "pglite")} (the first start takes a while)`
      : `opening databases ${location.prefix}* on ${redactUrl(location.serverUrl)}`,
  );
  const open = async (name: DatabaseName, migrationsFolder?: string): Promise<DatabaseHandle> => {
    const handle = await openDatabase({
      ...(await serviceDatabase(location, name)),
      ...(migrationsFolder ? { migrationsFolder } : {}),
    });
    onShutdown(handle, `${name} database`);
    return handle;
  };
  // The embedded bus gets a database of its own: on PGlite a transaction blocks every other
  // query of its instance, so a service transaction must never wait for a bus write.
  const [authDb, deliveryDb, queueDb, federationDb, busDb] = await allOpened([
    open("auth", authMigrationsFolder),
    open("delivery", DELIVERY_MIGRATIONS),
    open("queue", QUEUE_MIGRATIONS),
    open("federation", GATEWAY_MIGRATIONS),
    config.NATS_URL ? Promise.resolve(undefined) : open("bus"),
  ]);

  // 2. One bus for every service: the embedded bus wakes listeners only within its process.
  // Its messages (fan-outs with commits, KeyPackages, leaf credentials) are sealed under a key
  // outside the bus database: acknowledged rows are deleted, but deleted rows stay in the PGlite
  // files until overwritten.
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
  const names = busOverrides(config.HOMESERVER_BUS_NAMESPACE);

  // One federation router for AS, DS and QS: requests about other domains go to the federation
  // gateway's internal listener, which starts after them (step 6 connects the router to it).
  // Registered before the services, it closes after they stopped.
  const router = new FederationRouter({
    localDomain: domain,
    maxMessageBytes: config.GRPC_MAX_MESSAGE_BYTES,
  });
  onShutdown(() => router.close(), "federation router");

  // Each service runs through the runtime lifecycle on a free loopback port, without signal
  // handlers of its own: this process's runService owns the signals and stops them in order.
  const serviceEnv = (serviceName: string, own: Record<string, string>): Env => {
    const inherited: Record<string, string | undefined> = { ...env };
    // The homeserver's storage, bus and listeners are its own, not the services'.
    for (const key of OWN_VARIABLES) delete inherited[key];
    return {
      ...inherited,
      SERVICE_NAME: serviceName,
      LOG_LEVEL: config.SERVICES_LOG_LEVEL,
      GRPC_HOST: "127.0.0.1",
      GRPC_PORT: "0",
      METRICS_PORT: "0",
      DATA_DIR: dataDir,
      // Services drain within half the homeserver's grace, so the whole shutdown fits in it.
      SHUTDOWN_GRACE_MS: String(Math.floor(config.SHUTDOWN_GRACE_MS / 2)),
      ...own,
    };
  };

  // The services' secrets (key-encryption and replay-marker keys), which the five-process
  // deployment must get from secrets: the all-in-one keeps a generated one in its data directory
  // unless the operator sets the variable (docs/running.md).
  const secret = async (variable: string, file: string): Promise<Record<string, string>> =>
    env[variable] ? {} : { [variable]: await loadOrCreateKeyFile(join(dataDir, file)) };

  // 3. AS. Its signing keys are sealed under a key kept in the data directory unless the
  // operator provides one; the edge gateway on loopback is trusted to name the real caller.
  const authKey = await secret("AS_KEY_ENCRYPTION_KEY", join("auth", "key-encryption.key"));
  const auth = await runService({
    config: authConfigSchema,
    env: serviceEnv("auth", {
      AS_DOMAIN: domain,
      AS_TRUSTED_PROXIES: env.AS_TRUSTED_PROXIES || "127.0.0.1,::1",
      ...authKey,
    }),
    signals: false,
    exit: false,
    ...logTo,
    async setup(rt) {
      const service = await createAuthService({
        db: authDb.db,
        bus,
        config: rt.config,
        log: rt.logger,
        router,
      });
      rt.onShutdown(service, "auth service");
      return { services: [service.registration], reflection: { descriptorSet: fileDescriptorSet() } };
    },
  });
  onShutdown(stopper(auth), "auth");

  // 4. QS (keys wrapped under `$DATA_DIR/queue/storage.key` unless QS_STORAGE_KEY is set),
  // trusting the edge gateway's `x-forwarded-for` like the AS.
  const queue = await runService({
    config: queueConfigSchema,
    env: serviceEnv("queue", {
      QS_DOMAIN: domain,
      QS_TRUSTED_PROXIES: env.QS_TRUSTED_PROXIES || "127.0.0.1,::1",
    }),
    signals: false,
    exit: false,
    ...logTo,
    setup: (rt) =>
      setupQueue(rt, {
        database: queueDb,
        bus,
        subjectPrefix: names.subjectPrefix,
        streams: names.streams,
        router,
      }),
  });
  onShutdown(stopper(queue), "queue");

  // 5. DS.
  const delivery = await startDelivery({
    env: serviceEnv("delivery", {
      DS_DOMAIN: domain,
      // The edge gateway on loopback names the real caller of RequestGroupId, as for the AS.
      DS_TRUSTED_PROXIES: env.DS_TRUSTED_PROXIES || "127.0.0.1,::1",
      ...(await secret("DS_REPLAY_MARKER_KEY", join("delivery", "replay-marker.key"))),
      ...names.deliveryEnv,
    }),
    database: deliveryDb,
    bus,
    router,
    ...logTo,
  });
  onShutdown(() => delivery.stop(), "delivery");

  const addresses = {
    auth: `127.0.0.1:${auth.grpcPort}`,
    delivery: `127.0.0.1:${delivery.port}`,
    queue: `127.0.0.1:${queue.grpcPort}`,
  };

  // 6. Federation gateway. With the default allowlist policy and no allowed domains it federates
  // with nobody. Without TLS files it runs in plaintext only while FEDERATION_HOST is a loopback
  // address (default) or with the operator's explicit FEDERATION_INSECURE_PLAINTEXT=true; bound
  // elsewhere without either, the gateway refuses to start (docs/federation.md).
  const federation = await startFederationGateway({
    env: serviceEnv("federation-gateway", {
      FEDERATION_DOMAIN: domain,
      ...(await secret("FEDERATION_KEY_ENCRYPTION_KEY", join("federation", "key-encryption.key"))),
      GRPC_HOST: config.FEDERATION_HOST,
      GRPC_PORT: String(config.FEDERATION_PORT),
      FEDERATION_INTERNAL_HOST: "127.0.0.1",
      FEDERATION_INTERNAL_PORT: "0",
      FEDERATION_AS_ADDRESS: addresses.auth,
      FEDERATION_DS_ADDRESS: addresses.delivery,
      FEDERATION_QS_ADDRESS: addresses.queue,
      ...names.federationEnv,
    }),
    database: federationDb,
    bus,
    ...logTo,
  });
  onShutdown(() => federation.stop(), "federation gateway");
  router.connect(`127.0.0.1:${federation.internalPort}`);

  // 7. Edge gateway on the public port, configured by the EDGE_* variables.
  const edge = loadConfig(edgeGatewayConfig, {
    ...env,
    HTTP_HOST: config.HTTP_HOST,
    HTTP_PORT: String(config.HTTP_PORT),
    AUTH_SERVICE_ADDRESS: addresses.auth,
    DELIVERY_SERVICE_ADDRESS: addresses.delivery,
    QUEUE_SERVICE_ADDRESS: addresses.queue,
  });
  const gateway = await startEdgeGateway({
    host: edge.HTTP_HOST,
    port: edge.HTTP_PORT,
    upstreams: addresses,
    limits: {
      maxBodyBytes: edge.EDGE_MAX_BODY_BYTES,
      maxMessageBytes: edge.GRPC_MAX_MESSAGE_BYTES,
      defaultDeadlineMs: edge.EDGE_DEFAULT_DEADLINE_MS,
      maxDeadlineMs: edge.EDGE_MAX_DEADLINE_MS,
      rateLimitPerSecond: edge.EDGE_RATE_LIMIT_PER_SECOND,
      rateLimitBurst: edge.EDGE_RATE_LIMIT_BURST,
      heartbeatMs: edge.EDGE_WS_HEARTBEAT_MS,
      upstreamKeepaliveMs: edge.EDGE_UPSTREAM_KEEPALIVE_MS,
    },
    trustProxy: edge.EDGE_TRUST_PROXY,
    logger: logger.child({ service: "edge-gateway" }, { level: config.SERVICES_LOG_LEVEL }),
    metrics,
  });
  onShutdown(gateway, "edge gateway");

  const all: HomeserverAddresses = {
    ...addresses,
    federation: `${config.FEDERATION_HOST}:${federation.port}`,
    federationInternal: `127.0.0.1:${federation.internalPort}`,
  };
  // This process's own gRPC listener serves grpc.health.v1 only.
  return { services: [], url: gateway.url, addresses: all };
}

/** The gateway variables that decide its transport (checked up front by {@link setupHomeserver}). */
const FEDERATION_TRANSPORT = gatewayConfigSchema.pick({
  FEDERATION_TLS_CERT_FILE: true,
  FEDERATION_TLS_KEY_FILE: true,
  FEDERATION_TLS_CA_FILE: true,
  FEDERATION_MTLS: true,
  FEDERATION_INSECURE_PLAINTEXT: true,
});

/** Variables that describe the homeserver itself and must not leak into a service's config. */
const OWN_VARIABLES = [
  "DATABASE_URL",
  "DATABASE_POOL_MAX",
  "NATS_URL",
  "NATS_USER",
  "NATS_PASSWORD",
  "NATS_TOKEN",
  "BUS_PAYLOAD_KEY",
  "HTTP_HOST",
  "HTTP_PORT",
  "METRICS_HOST",
] as const;

/** Waits for all, then throws the first failure (so every success is registered first). */
async function allOpened<T extends readonly unknown[]>(
  pending: { [K in keyof T]: Promise<T[K]> },
): Promise<T> {
  const settled = await Promise.allSettled(pending);
  const failed = settled.find((result) => result.status === "rejected");
  if (failed) throw failed.reason;
  return settled.map((result) => (result as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

/** The shutdown of an embedded service; a non-zero code fails the homeserver's shutdown too. */
function stopper(service: RunningService<BaseConfig>): () => Promise<void> {
  return async () => {
    const code = await service.shutdown("homeserver shutdown");
    if (code !== 0) throw new Error(`${service.config.SERVICE_NAME} shut down with code ${code}`);
  };
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
      storage: config.DATABASE_URL ? "postgres" : join(resolve(config.DATA_DIR), "pglite"),
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
