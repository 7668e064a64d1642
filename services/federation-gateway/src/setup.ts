import { fileDescriptorSet } from "@phoenix/proto";
import type { Bus } from "@phoenix/runtime/bus";
import type { Env } from "@phoenix/runtime/config";
import type { DatabaseHandle } from "@phoenix/runtime/db";
import { createGrpcServer } from "@phoenix/runtime/grpc";
import {
  openServiceStorage,
  type RunningService,
  type RunServiceOptions,
  runService,
  type ServiceRuntime,
  type ServiceSetup,
} from "@phoenix/runtime/lifecycle";
import { translateGatewayError } from "./api/translate-error.js";
import { type GatewayConfig, gatewayConfigSchema } from "./config.js";
import { parseStaticPeers } from "./domain/peers.js";
import { FederationGateway, parseSeed } from "./gateway.js";
import { isLoopbackHost, loadTls, serverCredentials } from "./outbound/tls.js";
import { federationKeyEncryption } from "./store/key-store.js";
import { GATEWAY_MIGRATIONS } from "./store/migrations.js";

/** Resources an embedding process already holds (tests, the all-in-one homeserver). */
export interface GatewayResources {
  /**
   * Used instead of opening DATABASE_URL / DATA_DIR; the embedder closes it. Without
   * `tryWithLock` this gateway delivers outbound traffic unconditionally (run one replica only).
   */
  database?: Pick<DatabaseHandle, "db"> & Partial<Pick<DatabaseHandle, "tryWithLock">>;
  /** Used instead of opening NATS_URL / the embedded bus; the embedder closes it. */
  bus?: Bus;
  now?: () => number;
}

/** What {@link setupFederationGateway} hands to `runService`, plus the gateway and its internal port. */
export interface GatewaySetup extends ServiceSetup {
  gateway: FederationGateway;
  /** Port of the internal FederationProxyService listener. */
  internalPort: number;
}

function upstreamsOf(config: GatewayConfig): Map<string, string> {
  const map = new Map<string, string>();
  if (config.FEDERATION_AS_ADDRESS) map.set("phoenix.auth.v1.AuthService", config.FEDERATION_AS_ADDRESS);
  if (config.FEDERATION_DS_ADDRESS)
    map.set("phoenix.delivery.v1.DeliveryService", config.FEDERATION_DS_ADDRESS);
  if (config.FEDERATION_QS_ADDRESS) map.set("phoenix.queue.v1.QueueService", config.FEDERATION_QS_ADDRESS);
  return map;
}

/**
 * The gateway's `runService` setup: the public FederationService is runService's listener
 * (GRPC_HOST:GRPC_PORT, TLS from the config); the internal FederationProxyService gets its own
 * plaintext listener (FEDERATION_INTERNAL_HOST:PORT) so peers can never reach it. Shutdown order:
 * internal listener, gateway (lanes), bus, database.
 */
export async function setupFederationGateway(
  runtime: ServiceRuntime<GatewayConfig>,
  resources: GatewayResources = {},
): Promise<GatewaySetup> {
  const { config, logger, metrics, onShutdown } = runtime;
  const tls = loadTls(config);
  if (tls.plaintext && tls.loopbackOnly !== true) {
    // The explicit opt-in: loud, on every start, so it cannot go unnoticed into production.
    logger.warn(
      { listener: config.GRPC_HOST, loopback: isLoopbackHost(config.GRPC_HOST) },
      "FEDERATION_INSECURE_PLAINTEXT=true: federation runs WITHOUT TLS; peers' domain keys and all " +
        "server-to-server traffic can be read and replaced on path. Tests and local development only",
    );
  } else if (tls.plaintext) {
    logger.info(
      { listener: config.GRPC_HOST },
      "federation without TLS on loopback only: peers are dialled on loopback addresses only",
    );
  }
  const credentials = serverCredentials(tls);
  const staticPeers = parseStaticPeers(config.FEDERATION_PEERS);
  const { database, bus } = await openServiceStorage(
    runtime,
    { name: "federation-gateway", migrationsFolder: GATEWAY_MIGRATIONS },
    resources,
  );
  const gateway = await FederationGateway.create({
    domain: config.FEDERATION_DOMAIN,
    db: database.db,
    bus,
    logger,
    tls,
    staticPeers,
    staticOnly: config.FEDERATION_STATIC_ONLY,
    policy: {
      mode: config.FEDERATION_POLICY,
      allowed: config.FEDERATION_ALLOWED_DOMAINS,
      denied: config.FEDERATION_DENIED_DOMAINS,
    },
    rateLimit: { ratePerSecond: config.FEDERATION_PEER_RATE, burst: config.FEDERATION_PEER_BURST },
    upstreams: upstreamsOf(config),
    signingKeySeed: parseSeed(config.FEDERATION_SIGNING_KEY),
    keyEncryption: federationKeyEncryption(
      config.FEDERATION_KEY_ENCRYPTION_KEY,
      config.FEDERATION_KEY_ENCRYPTION_KEY_PREVIOUS,
    ),
    keyRotationMs: config.FEDERATION_KEY_ROTATION,
    keyOverlapMs: config.FEDERATION_KEY_OVERLAP,
    keyRefreshMs: config.FEDERATION_KEY_REFRESH,
    peerKeyTtlMs: config.FEDERATION_PEER_KEY_TTL,
    peerKeyRefetchMs: config.FEDERATION_PEER_KEY_REFETCH,
    peerCacheMaxEntries: config.FEDERATION_PEER_CACHE_MAX,
    dnsCacheTtlMs: config.FEDERATION_DNS_CACHE_TTL,
    maxPeerChannels: config.FEDERATION_PEER_CHANNELS_MAX,
    window: {
      maxAgeMs: config.FEDERATION_MAX_REQUEST_AGE,
      maxFutureSkewMs: config.FEDERATION_MAX_CLOCK_SKEW,
    },
    deliveryTimeoutMs: config.FEDERATION_DELIVERY_TIMEOUT,
    backoff: { initialMs: config.FEDERATION_RETRY_INITIAL, maxMs: config.FEDERATION_RETRY_MAX },
    laneLeaseMs: config.FEDERATION_LANE_LEASE,
    lock: database.tryWithLock?.bind(database),
    standbyRetryMs: config.FEDERATION_STANDBY_RETRY,
    streams: {
      outbound: config.FEDERATION_OUTBOUND_STREAM,
      fanOut: config.FEDERATION_FANOUT_STREAM,
      queueDeleted: config.FEDERATION_QUEUE_DELETED_STREAM,
    },
    subjectPrefix: config.FEDERATION_SUBJECT_PREFIX,
    consumerPrefix: config.FEDERATION_CONSUMER_PREFIX,
    dedupeRetentionMs: config.FEDERATION_DEDUPE_RETENTION,
    maxMessageBytes: config.GRPC_MAX_MESSAGE_BYTES,
    metricsRegistry: metrics.registry,
    ...(resources.now ? { now: resources.now } : {}),
  });
  onShutdown(gateway, "federation gateway");
  await gateway.start();

  const internal = createGrpcServer({
    services: [gateway.proxy],
    config: {
      ...config,
      GRPC_HOST: config.FEDERATION_INTERNAL_HOST,
      GRPC_PORT: config.FEDERATION_INTERNAL_PORT,
    },
    logger: logger.child({ listener: "internal" }),
    metrics,
    translateError: translateGatewayError,
  });
  const internalPort = await internal.start();
  onShutdown(() => internal.shutdown({ graceMs: config.SHUTDOWN_GRACE_MS }), "internal grpc server");
  logger.info(
    { domain: config.FEDERATION_DOMAIN, tls: !tls.plaintext, mutualTls: tls.mutual, internalPort },
    "federation gateway ready",
  );
  return {
    gateway,
    internalPort,
    services: [gateway.federation],
    credentials,
    reflection: { descriptorSet: fileDescriptorSet() },
    translateError: translateGatewayError,
  };
}

/** Options of {@link startFederationGateway}. */
export interface StartGatewayOptions extends GatewayResources {
  /** The gateway's environment (GRPC_PORT / FEDERATION_INTERNAL_PORT / METRICS_PORT 0 pick free ports). */
  env: Env;
  logDestination?: RunServiceOptions<typeof gatewayConfigSchema>["logDestination"];
}

/** A gateway running in this process (tests, harnesses, the all-in-one homeserver). */
export interface RunningGateway {
  gateway: FederationGateway;
  runtime: RunningService<GatewayConfig>;
  /** Public FederationService port. */
  port: number;
  /** Internal FederationProxyService port. */
  internalPort: number;
  /** Graceful shutdown; rejects if something failed to close. */
  stop(): Promise<void>;
}

/** Runs a gateway in-process through `runService`, without signal handlers or process exit. */
export async function startFederationGateway(options: StartGatewayOptions): Promise<RunningGateway> {
  let built: GatewaySetup | undefined;
  const runtime = await runService({
    config: gatewayConfigSchema,
    env: options.env,
    signals: false,
    exit: false,
    ...(options.logDestination ? { logDestination: options.logDestination } : {}),
    async setup(rt) {
      built = await setupFederationGateway(rt, options);
      return built;
    },
  });
  if (built === undefined) throw new Error("runService returned without running setup");
  const { gateway, internalPort } = built;
  return {
    gateway,
    runtime,
    port: runtime.grpcPort,
    internalPort,
    async stop() {
      const code = await runtime.shutdown("stop");
      if (code !== 0) throw new Error(`the federation gateway shut down with code ${code}`);
    },
  };
}
