import {
  DEFAULT_ENVELOPE_WINDOW,
  type EnvelopeWindow,
  fromHex,
  type KeyEncryptionKeys,
} from "@phoenix/crypto";
import { federation, rpcCatalog } from "@phoenix/proto";
import { type Bus, busSubjects, busTopology, fanOutStream, queueDeletedStream } from "@phoenix/runtime/bus";
import type { Database, DatabaseHandle } from "@phoenix/runtime/db";
import { statusName } from "@phoenix/runtime/errors";
import { defineService, type ServiceRegistration, unary } from "@phoenix/runtime/grpc";
import type { Logger } from "@phoenix/runtime/log";
import type { Metrics } from "@phoenix/runtime/metrics";
import { ReplayStore } from "@phoenix/runtime/replay";
import { deliverFanOut } from "./api/deliver-fan-out.js";
import type { GatewayDeps } from "./api/deps.js";
import { forward } from "./api/forward.js";
import { getDomainKeys } from "./api/get-domain-keys.js";
import { InboundAuthenticator } from "./api/inbound-auth.js";
import { proxy } from "./api/proxy.js";
import { reportQueueDeleted } from "./api/report-queue-deleted.js";
import { translateGatewayError } from "./api/translate-error.js";
import { PeerResolver } from "./discovery/resolver.js";
import type { BackoffConfig } from "./domain/backoff.js";
import type { PeerAddress } from "./domain/peers.js";
import {
  FederationPolicy,
  type PolicyConfig,
  peerRateLimiter,
  type RateLimitConfig,
} from "./domain/policy.js";
import { GatewayMetrics } from "./gateway-metrics.js";
import { DeliveryLanes } from "./outbound/delivery-lanes.js";
import { PeerClients } from "./outbound/peer-clients.js";
import { PeerKeyDirectory } from "./outbound/peer-keys.js";
import { PeerSender } from "./outbound/peer-sender.js";
import type { FederationTls } from "./outbound/tls.js";
import { UpstreamServices } from "./outbound/upstream.js";
import { pruneSeenEnvelopes } from "./store/envelope-store.js";
import { KeyRing } from "./store/key-ring.js";

const DAY = 24 * 3600 * 1000;

/** Streams (shared with the QS and DS) and the subject prefix ("" in deployments, unique in tests). */
export interface GatewayStreams {
  outbound: string;
  fanOut: string;
  queueDeleted: string;
}

/** Everything the gateway needs, injected (setup.ts builds it from the environment). */
export interface FederationGatewayOptions {
  domain: string;
  db: Database;
  bus: Bus;
  logger: Logger;
  tls: FederationTls;
  staticPeers: ReadonlyMap<string, PeerAddress>;
  staticOnly?: boolean;
  policy: PolicyConfig;
  rateLimit: RateLimitConfig;
  /** Local services by full service name (`phoenix.auth.v1.AuthService` → host:port). */
  upstreams: ReadonlyMap<string, string>;
  signingKeySeed?: Uint8Array | undefined;
  /**
   * FEDERATION_KEY_ENCRYPTION_KEY (and `_PREVIOUS`): seals the signing-key seeds in the database;
   * the replay-marker keys are derived from it.
   */
  keyEncryption: KeyEncryptionKeys;
  keyRotationMs?: number;
  keyOverlapMs?: number;
  keyRefreshMs?: number;
  peerKeyTtlMs?: number;
  peerKeyRefetchMs?: number;
  /** Peer domains each in-memory cache holds: keys, refetch marks, DNS answers (default 10000). */
  peerCacheMaxEntries?: number;
  /** How long a DNS answer is reused (default 5 minutes). */
  dnsCacheTtlMs?: number;
  /** Open channels to peer gateways (default 1000). */
  maxPeerChannels?: number;
  window?: EnvelopeWindow;
  deliveryTimeoutMs?: number;
  backoff?: BackoffConfig;
  /** An outbound message held by a gateway that died comes back after this long (default 1 min). */
  laneLeaseMs?: number;
  /** The database's cross-process lock: replicas elect the one that delivers outbound traffic. */
  lock?: DatabaseHandle["tryWithLock"] | undefined;
  /** How often a standby replica tries to take over outbound delivery (default 5 s). */
  standbyRetryMs?: number;
  streams?: Partial<GatewayStreams>;
  subjectPrefix?: string;
  consumerPrefix?: string;
  dedupeRetentionMs?: number;
  maxMessageBytes?: number;
  /** runService's registry for the gateway's domain metrics (none: not exported). */
  metricsRegistry?: Metrics["registry"];
  now?: () => number;
}

/**
 * A running federation gateway minus its gRPC servers: key ring, peer key directory, policy,
 * outbound delivery lanes, and the two service registrations — `federation` (public, for peer
 * gateways, over TLS) and `proxy` (internal, for this homeserver's services).
 */
export class FederationGateway {
  readonly federation: ServiceRegistration;
  readonly proxy: ServiceRegistration;
  readonly deps: GatewayDeps;
  readonly lanes: DeliveryLanes;
  readonly metrics: GatewayMetrics;
  private readonly pruneTimer: NodeJS.Timeout;
  private readonly requestPruneTimer: NodeJS.Timeout;

  private constructor(
    private readonly options: FederationGatewayOptions,
    keys: KeyRing,
  ) {
    const now = options.now ?? Date.now;
    this.metrics = new GatewayMetrics(options.metricsRegistry);
    const maxMessageBytes = options.maxMessageBytes ?? 4 * 1024 * 1024;
    const resolver = new PeerResolver({
      staticPeers: options.staticPeers,
      staticOnly: options.staticOnly ?? false,
      cacheTtlMs: options.dnsCacheTtlMs ?? 300_000,
      cacheMaxEntries: options.peerCacheMaxEntries ?? 10_000,
      now,
    });
    const peers = new PeerClients(resolver, options.tls, maxMessageBytes, options.maxPeerChannels ?? 1000);
    const policy = new FederationPolicy(options.policy);
    const window = options.window ?? DEFAULT_ENVELOPE_WINDOW;
    const directory = new PeerKeyDirectory({
      db: options.db,
      clients: peers,
      logger: options.logger,
      ttlMs: options.peerKeyTtlMs ?? 3600_000,
      refetchMs: options.peerKeyRefetchMs ?? 10_000,
      maxEntries: options.peerCacheMaxEntries ?? 10_000,
      now,
    });
    // Markers of peers' request ids, keyed with a secret of this deployment (derived from the
    // key-encryption key): a database snapshot alone cannot test them against guessed requests.
    const [markerKey = new Uint8Array(0), ...previousMarkerKeys] =
      options.keyEncryption.replayMarkerKeys("federation-gateway");
    const seenRequests = new ReplayStore(markerKey, previousMarkerKeys);
    const auth = new InboundAuthenticator({
      ownDomain: options.domain,
      policy,
      rateLimiter: peerRateLimiter(options.rateLimit, now),
      keys: directory,
      window,
      logger: options.logger,
      seenRequests,
      db: options.db,
      matchPeerCertificate: options.tls.mutual && !options.tls.plaintext,
      now,
    });
    const catalog = rpcCatalog();
    const prefix = options.subjectPrefix ?? busTopology().subjectPrefix;
    const subjects = busSubjects(prefix);
    this.deps = {
      domain: options.domain,
      db: options.db,
      bus: options.bus,
      keys,
      auth,
      policy,
      peers,
      peerKeys: directory,
      upstream: new UpstreamServices(options.upstreams, maxMessageBytes),
      federated: new Map(catalog.filter((r) => r.policy?.federated).map((r) => [r.path, r])),
      known: new Set(catalog.map((r) => r.path)),
      subjects: { fanOut: subjects.fanOut, queueDeleted: subjects.queueDeleted },
      proxyTimeoutMs: options.deliveryTimeoutMs ?? 10_000,
    };
    const deps = this.deps;
    const metrics = this.metrics;
    /** Counts the requests the gateway itself refuses (passed-through upstream statuses are not refusals). */
    async function counted<T>(work: () => Promise<T>): Promise<T> {
      try {
        return await work();
      } catch (error) {
        const mapped = translateGatewayError(error);
        if (mapped && mapped.name !== "PassthroughStatusError")
          metrics.inboundRefused.inc({ code: statusName(mapped.code) });
        throw error;
      }
    }
    this.federation = defineService(federation.FederationServiceService, {
      getDomainKeys: unary(async () => getDomainKeys(deps)),
      deliverFanOut: unary(async (request, ctx) => counted(() => deliverFanOut(deps, request, ctx))),
      reportQueueDeleted: unary(async (request, ctx) =>
        counted(() => reportQueueDeleted(deps, request, ctx)),
      ),
      forward: unary(async (request, ctx) => counted(() => forward(deps, request, ctx))),
    });
    this.proxy = defineService(federation.FederationProxyServiceService, {
      proxy: unary(async (request, ctx) => proxy(deps, request, ctx)),
    });
    this.lanes = new DeliveryLanes({
      bus: options.bus,
      db: options.db,
      logger: options.logger,
      ownDomain: options.domain,
      policy,
      sender: new PeerSender(options.domain, keys, peers, options.deliveryTimeoutMs ?? 10_000),
      stream: this.streams.outbound,
      subjectPrefix: prefix,
      consumerPrefix: options.consumerPrefix ?? busTopology().durables.lanePrefix,
      backoff: options.backoff ?? { initialMs: 500, maxMs: 30_000 },
      attemptTimeoutMs: options.deliveryTimeoutMs ?? 10_000,
      leaseMs: options.laneLeaseMs ?? 60_000,
      lock: options.lock,
      standbyRetryMs: options.standbyRetryMs ?? 5000,
      metrics: this.metrics,
    });
    this.pruneTimer = setInterval(() => {
      const before = new Date(now() - (options.dedupeRetentionMs ?? 30 * DAY));
      pruneSeenEnvelopes(options.db, before).catch((err) =>
        options.logger.warn({ err }, "pruning envelope ids failed"),
      );
    }, 3600_000);
    this.pruneTimer.unref();
    this.requestPruneTimer = setInterval(() => {
      seenRequests
        .sweep(options.db, new Date(now()))
        .catch((err) => options.logger.warn({ err }, "pruning request ids failed"));
    }, 60_000);
    this.requestPruneTimer.unref();
  }

  /** Loads (or creates) the domain keys and builds the gateway; call `start()` to begin delivering. */
  static async create(options: FederationGatewayOptions): Promise<FederationGateway> {
    const keys = await KeyRing.open({
      db: options.db,
      logger: options.logger,
      pinnedSeed: options.signingKeySeed,
      encryption: options.keyEncryption,
      rotationMs: options.keyRotationMs ?? 30 * DAY,
      overlapMs: options.keyOverlapMs ?? 2 * DAY,
      refreshMs: options.keyRefreshMs ?? 60_000,
      ...(options.now ? { now: options.now } : {}),
    });
    return new FederationGateway(options, keys);
  }

  /** The stream names in use. */
  get streams(): GatewayStreams {
    const defaults = busTopology().streams;
    return {
      outbound: this.options.streams?.outbound ?? defaults.federation,
      fanOut: this.options.streams?.fanOut ?? defaults.fanOut,
      queueDeleted: this.options.streams?.queueDeleted ?? defaults.queueDeleted,
    };
  }

  /** Ensures the inbound streams exist (the gateway publishes into them) and starts the outbound lanes. */
  async start(): Promise<void> {
    const { bus } = this.options;
    await bus.ensureStream(fanOutStream(this.streams.fanOut, this.deps.subjects.fanOut));
    await bus.ensureStream(queueDeletedStream(this.streams.queueDeleted, this.deps.subjects.queueDeleted));
    await this.lanes.start();
  }

  /** Stops delivering and releases timers and channels (not the bus or database). */
  async close(): Promise<void> {
    clearInterval(this.pruneTimer);
    clearInterval(this.requestPruneTimer);
    await this.lanes.stop();
    this.deps.keys.close();
    this.deps.peers.close();
    this.deps.upstream.close();
  }
}

/** Parses the operator's hex seed. */
export function parseSeed(hex: string | undefined): Uint8Array | undefined {
  return hex === undefined ? undefined : fromHex(hex.toLowerCase());
}
