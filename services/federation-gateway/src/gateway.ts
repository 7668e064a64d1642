import { fromHex, type KeyEncryptionKeys } from "@phoenix/crypto";
import { rpcCatalog } from "@phoenix/proto";
import { type Bus, busSubjects, fanOutStream, queueDeletedStream } from "@phoenix/runtime/bus";
import { type DatabaseHandle, deleteAdminAuditBefore } from "@phoenix/runtime/db";
import type { ServiceRegistration } from "@phoenix/runtime/grpc";
import type { Logger } from "@phoenix/runtime/log";
import type { Metrics } from "@phoenix/runtime/metrics";
import { intervalWorker, parseOperatorKeys, type Worker } from "@phoenix/runtime/module";
import { ReplayStore } from "@phoenix/runtime/replay";
import { federationAdminRoutes } from "./admin/federation-admin.js";
import type { GatewayContext } from "./api/context.js";
import { InboundAuthenticator } from "./api/inbound-auth.js";
import type { GatewayConfig } from "./config.js";
import { PeerResolver } from "./discovery/resolver.js";
import { parseStaticPeers } from "./domain/peers.js";
import { FederationPolicy, type PolicyConfig, peerRateLimiter } from "./domain/policy.js";
import { GatewayMetrics } from "./gateway-metrics.js";
import { DeliveryLanes } from "./outbound/delivery-lanes.js";
import { registerLaneMetrics } from "./outbound/lane-metrics.js";
import { PeerClients } from "./outbound/peer-clients.js";
import { PeerKeyDirectory } from "./outbound/peer-keys.js";
import { PeerSender } from "./outbound/peer-sender.js";
import type { FederationTls } from "./outbound/tls.js";
import { UpstreamServices } from "./outbound/upstream.js";
import { federationRoutes, proxyRoutes } from "./routes.js";
import { pruneSeenEnvelopes } from "./store/envelope-store.js";
import { KeyRing } from "./store/key-ring.js";
import { federationKeyEncryption } from "./store/key-store.js";
import { PeerActivity, prunePeerStats } from "./store/peer-stats.js";
import { loadStoredPolicy } from "./store/policy-store.js";

/** Peers not seen for this long leave ListPeers (fed_peer_stats rows pruned). */
const PEER_STATS_RETENTION = 90 * 24 * 3600_000;
/** Each replica writes its tally of peer events this often: one write per peer per minute. */
const PEER_STATS_FLUSH = 60_000;

/** Streams (shared with the QS and DS) and the subject prefix ("" in deployments, unique in tests). */
export interface GatewayStreams {
  outbound: string;
  fanOut: string;
  queueDeleted: string;
}

/** What the gateway is built from: its parsed config (defaults live in config.ts) and resources. */
export interface FederationGatewayOptions {
  config: GatewayConfig;
  /** Its `tryWithLock` elects the one replica that delivers outbound traffic. */
  database: Pick<DatabaseHandle, "db" | "tryWithLock">;
  bus: Bus;
  logger: Logger;
  /** The transport `loadTls(config)` chose (checked before anything opened). */
  tls: FederationTls;
  /** runService's registry for the gateway's domain metrics (none: not exported). */
  metricsRegistry?: Metrics["registry"];
  /** Milliseconds since the epoch (default `Date.now`). */
  now?: () => number;
}

/** Local services by full service name (`phoenix.auth.v1.AuthService` → host:port). */
function upstreamsOf(config: GatewayConfig): Map<string, string> {
  const map = new Map<string, string>();
  if (config.FEDERATION_AS_ADDRESS) map.set("phoenix.auth.v1.AuthService", config.FEDERATION_AS_ADDRESS);
  if (config.FEDERATION_DS_ADDRESS)
    map.set("phoenix.delivery.v1.DeliveryService", config.FEDERATION_DS_ADDRESS);
  if (config.FEDERATION_QS_ADDRESS) map.set("phoenix.queue.v1.QueueService", config.FEDERATION_QS_ADDRESS);
  return map;
}

/**
 * The federation gateway minus its gRPC servers: key ring, peer key directory, policy, the two
 * service registrations — `federation` (public, for peer gateways, over TLS) and `proxy`
 * (internal, for this homeserver's services) — and its workers.
 */
export class FederationGateway {
  readonly federation: ServiceRegistration;
  readonly proxy: ServiceRegistration;
  /** phoenix.admin.v1.FederationAdminService, for the admin listener only. */
  readonly admin: ServiceRegistration;
  /** What this replica saw of its peers since the last flush (ListPeers' figures). */
  readonly activity: PeerActivity;
  /** What the RPC handlers share. */
  readonly context: GatewayContext;
  readonly lanes: DeliveryLanes;
  readonly metrics: GatewayMetrics;
  /** The stream names in use. */
  readonly streams: GatewayStreams;
  /**
   * The background work for the runner to start in this order (and stop in reverse): key refresh,
   * outbound lanes (with their scout), envelope-id pruning, request-id pruning.
   */
  readonly workers: readonly Worker[];

  private constructor(
    options: FederationGatewayOptions,
    keys: KeyRing,
    keyEncryption: KeyEncryptionKeys,
    stored: PolicyConfig | undefined,
  ) {
    const { config, database, bus, logger } = options;
    const db = database.db;
    const now = options.now ?? Date.now;
    const domain = config.FEDERATION_DOMAIN;
    this.metrics = new GatewayMetrics(options.metricsRegistry);
    this.streams = {
      outbound: config.FEDERATION_OUTBOUND_STREAM,
      fanOut: config.FEDERATION_FANOUT_STREAM,
      queueDeleted: config.FEDERATION_QUEUE_DELETED_STREAM,
    };
    const maxMessageBytes = config.GRPC_MAX_MESSAGE_BYTES;
    const resolver = new PeerResolver({
      staticPeers: parseStaticPeers(config.FEDERATION_PEERS),
      staticOnly: config.FEDERATION_STATIC_ONLY,
      cacheTtlMs: config.FEDERATION_DNS_CACHE_TTL,
      cacheMaxEntries: config.FEDERATION_PEER_CACHE_MAX,
      now,
    });
    const peers = new PeerClients(
      resolver,
      options.tls,
      maxMessageBytes,
      config.FEDERATION_PEER_CHANNELS_MAX,
    );
    // The configured policy until an operator sets one (admin SetFederationPolicy, stored).
    const configured: PolicyConfig = {
      mode: config.FEDERATION_POLICY,
      allowed: config.FEDERATION_ALLOWED_DOMAINS,
      denied: config.FEDERATION_DENIED_DOMAINS,
    };
    const policy = new FederationPolicy(stored ?? configured);
    const activity = new PeerActivity(now, config.FEDERATION_PEER_CACHE_MAX);
    this.activity = activity;
    const directory = new PeerKeyDirectory({
      db,
      clients: peers,
      logger,
      ttlMs: config.FEDERATION_PEER_KEY_TTL,
      refetchMs: config.FEDERATION_PEER_KEY_REFETCH,
      maxEntries: config.FEDERATION_PEER_CACHE_MAX,
      now,
    });
    // Markers of peers' request ids, keyed with a secret of this deployment (derived from the
    // key-encryption key): a database snapshot alone cannot test them against guessed requests.
    const [markerKey = new Uint8Array(0), ...previousMarkerKeys] =
      keyEncryption.replayMarkerKeys("federation-gateway");
    const seenRequests = new ReplayStore(markerKey, previousMarkerKeys);
    const auth = new InboundAuthenticator({
      ownDomain: domain,
      policy,
      rateLimiter: peerRateLimiter(
        { ratePerSecond: config.FEDERATION_PEER_RATE, burst: config.FEDERATION_PEER_BURST },
        now,
      ),
      keys: directory,
      window: {
        maxAgeMs: config.FEDERATION_MAX_REQUEST_AGE,
        maxFutureSkewMs: config.FEDERATION_MAX_CLOCK_SKEW,
      },
      logger,
      seenRequests,
      db,
      matchPeerCertificate: options.tls.mutual && !options.tls.plaintext,
      activity,
      now,
    });
    const catalog = rpcCatalog();
    const subjects = busSubjects(config.FEDERATION_SUBJECT_PREFIX);
    this.context = {
      domain,
      db,
      bus,
      keys,
      auth,
      policy,
      peers,
      peerKeys: directory,
      upstream: new UpstreamServices(upstreamsOf(config), maxMessageBytes),
      federated: new Map(catalog.filter((r) => r.policy?.federated).map((r) => [r.path, r])),
      known: new Set(catalog.map((r) => r.path)),
      subjects: { fanOut: subjects.fanOut, queueDeleted: subjects.queueDeleted },
      proxyTimeoutMs: config.FEDERATION_DELIVERY_TIMEOUT,
      activity,
      now,
    };
    this.federation = federationRoutes(this.context, this.metrics);
    this.proxy = proxyRoutes(this.context);
    this.lanes = new DeliveryLanes({
      bus,
      db,
      logger,
      ownDomain: domain,
      policy,
      sender: new PeerSender(domain, keys, peers, config.FEDERATION_DELIVERY_TIMEOUT),
      stream: this.streams.outbound,
      subjectPrefix: config.FEDERATION_SUBJECT_PREFIX,
      consumerPrefix: config.FEDERATION_CONSUMER_PREFIX,
      backoff: { initialMs: config.FEDERATION_RETRY_INITIAL, maxMs: config.FEDERATION_RETRY_MAX },
      attemptTimeoutMs: config.FEDERATION_DELIVERY_TIMEOUT,
      leaseMs: config.FEDERATION_LANE_LEASE,
      lock: database.tryWithLock.bind(database),
      standbyRetryMs: config.FEDERATION_STANDBY_RETRY,
      metrics: this.metrics,
      activity,
    });
    const window = {
      maxAgeMs: config.FEDERATION_MAX_REQUEST_AGE,
      maxFutureSkewMs: config.FEDERATION_MAX_CLOCK_SKEW,
    };
    this.admin = federationAdminRoutes({
      domain,
      db,
      log: logger,
      now,
      // Checked at start like the AS's: a malformed entry stops the gateway with a config error.
      operatorKeys: parseOperatorKeys(config.ADMIN_OPERATOR_KEYS),
      // Operator request ids share the peers' replay table under their own scope ("operator").
      requestPolicy: (at) => ({ window, now: () => at, replay: seenRequests }),
      policy,
      configured,
      activity,
      bus,
      laneOf: (peer) => this.lanes.laneOf(peer),
    });
    if (options.metricsRegistry) registerLaneMetrics(options.metricsRegistry, bus, this.lanes);
    this.workers = [
      intervalWorker("key refresh", {
        intervalMs: config.FEDERATION_KEY_REFRESH,
        run: () => keys.refresh(),
        onError: (err) => logger.warn({ err }, "reloading the federation keys failed"),
      }),
      this.lanes,
      intervalWorker("envelope-id pruning", {
        intervalMs: 3600_000,
        run: () => pruneSeenEnvelopes(db, new Date(now() - config.FEDERATION_DEDUPE_RETENTION)),
        onError: (err) => logger.warn({ err }, "pruning envelope ids failed"),
      }),
      intervalWorker("admin audit pruning", {
        intervalMs: 3600_000,
        run: () => deleteAdminAuditBefore(db, new Date(now() - config.ADMIN_AUDIT_RETENTION)),
        onError: (err) => logger.warn({ err }, "pruning admin audit rows failed"),
      }),
      intervalWorker("request-id pruning", {
        intervalMs: 60_000,
        run: () => seenRequests.sweep(db, new Date(now())),
        onError: (err) => logger.warn({ err }, "pruning request ids failed"),
      }),
      // Every replica follows the policy an operator stored (SetFederationPolicy) within this.
      intervalWorker("policy refresh", {
        intervalMs: config.FEDERATION_POLICY_REFRESH,
        run: async () => policy.replace((await loadStoredPolicy(db)) ?? configured),
        onError: (err) => logger.warn({ err }, "reloading the federation policy failed"),
      }),
      peerStatsWorker(activity, db, logger, now),
    ];
  }

  /**
   * Loads (or creates) the domain keys, builds the gateway and declares the inbound streams it
   * publishes into; delivering is its workers' job.
   */
  static async create(options: FederationGatewayOptions): Promise<FederationGateway> {
    const { config } = options;
    // FEDERATION_KEY_ENCRYPTION_KEY (and `_PREVIOUS`) seals the signing-key seeds in the database;
    // the replay-marker keys are derived from it.
    const keyEncryption = federationKeyEncryption(
      config.FEDERATION_KEY_ENCRYPTION_KEY,
      config.FEDERATION_KEY_ENCRYPTION_KEY_PREVIOUS,
    );
    const keys = await KeyRing.open({
      db: options.database.db,
      logger: options.logger,
      pinnedSeed: parseSeed(config.FEDERATION_SIGNING_KEY),
      encryption: keyEncryption,
      rotationMs: config.FEDERATION_KEY_ROTATION,
      overlapMs: config.FEDERATION_KEY_OVERLAP,
      ...(options.now ? { now: options.now } : {}),
    });
    const gateway = new FederationGateway(
      options,
      keys,
      keyEncryption,
      await loadStoredPolicy(options.database.db),
    );
    const { streams, context } = gateway;
    await options.bus.ensureStream(fanOutStream(streams.fanOut, context.subjects.fanOut));
    await options.bus.ensureStream(queueDeletedStream(streams.queueDeleted, context.subjects.queueDeleted));
    return gateway;
  }

  /** Releases the peer and upstream channels once the runner stopped the workers (not the bus or database). */
  close(): void {
    this.context.peers.close();
    this.context.upstream.close();
  }
}

/**
 * Writes the replica's tally of peer events once a minute (and at stop), and prunes the peers
 * not seen for PEER_STATS_RETENTION once an hour.
 */
function peerStatsWorker(
  activity: PeerActivity,
  db: FederationGatewayOptions["database"]["db"],
  logger: Logger,
  now: () => number,
): Worker {
  let runs = 0;
  const flush = intervalWorker("peer stats", {
    intervalMs: PEER_STATS_FLUSH,
    run: async () => {
      await activity.flush(db);
      if (activity.dropped > 0) {
        logger.warn({ dropped: activity.dropped }, "peer events not counted: too many peer domains at once");
        activity.dropped = 0;
      }
      if (++runs % 60 === 0) await prunePeerStats(db, new Date(now() - PEER_STATS_RETENTION));
    },
    onError: (err) => logger.warn({ err }, "writing peer stats failed"),
  });
  return {
    name: flush.name,
    start: () => flush.start(),
    async stop() {
      await flush.stop();
      await activity.flush(db).catch((err: unknown) => logger.warn({ err }, "writing peer stats failed"));
    },
  };
}

/** Parses the operator's hex seed. */
export function parseSeed(hex: string | undefined): Uint8Array | undefined {
  return hex === undefined ? undefined : fromHex(hex.toLowerCase());
}
