import { decodeKeyText, OUTBOX_PAYLOAD, PayloadSealer } from "@phoenix/crypto";
import { createNodeCryptoProvider, PHOENIX_CIPHERSUITE } from "@phoenix/mls";
import { type Bus, fanOutStream, queueDeletedStream } from "@phoenix/runtime/bus";
import type { DatabaseHandle } from "@phoenix/runtime/db";
import { type FederationRouter, serviceFederationRouter } from "@phoenix/runtime/federation";
import type { ServiceRegistration } from "@phoenix/runtime/grpc";
import type { Logger } from "@phoenix/runtime/log";
import { consumerWorker, intervalWorker, outboxRelayWorker, type Worker } from "@phoenix/runtime/module";
import { OutboxRelay } from "@phoenix/runtime/outbox";
import { NamedRateLimit, SharedRateLimits, trustedProxies } from "@phoenix/runtime/rate-limit";
import { ReplayStore } from "@phoenix/runtime/replay";
import { getCiphersuiteFromName, getCiphersuiteImpl } from "ts-mls";
import type { DeliveryContext } from "./api/context.js";
import { handleQueueDeleted } from "./api/queue-deleted.js";
import { type DeliveryConfig, paddingBuckets } from "./config.js";
import type { DsGroup } from "./domain/group.js";
import { dayOf } from "./domain/queue-reports.js";
import { GroupStateCache } from "./domain/state-cache.js";
import { deliveryRoutes } from "./routes.js";
import {
  activityMonth,
  deleteExpiredReservations,
  deleteInactiveGroups,
  pruneQueueReports,
} from "./store/group-store.js";

/** Accepted age / future skew of signed request timestamps. */
const REPLAY_WINDOW = { maxAgeMs: 5 * 60_000, maxFutureSkewMs: 60_000 } as const;

/**
 * The DS's replay guard, keyed with DS_REPLAY_MARKER_KEY (a secret of this deployment): the
 * stored markers are keyed hashes of the clients' random request ids, which someone holding only
 * the database cannot test against guessed requests. Markers under the previous key still count.
 */
function replayStore(config: DeliveryConfig): ReplayStore {
  const previous = config.DS_REPLAY_MARKER_KEY_PREVIOUS;
  return new ReplayStore(
    decodeKeyText(config.DS_REPLAY_MARKER_KEY, "DS_REPLAY_MARKER_KEY"),
    previous === undefined ? [] : [decodeKeyText(previous, "DS_REPLAY_MARKER_KEY_PREVIOUS")],
  );
}

/**
 * Seals fan-outs in the outbox under a key derived from DS_REPLAY_MARKER_KEY (the DS's one
 * secret, kept outside the database): relayed rows are deleted, but deleted rows stay readable in
 * the database files until overwritten. Rows sealed under the previous key still open.
 */
function outboxSealer(config: DeliveryConfig): PayloadSealer {
  const previous = config.DS_REPLAY_MARKER_KEY_PREVIOUS;
  return new PayloadSealer(
    OUTBOX_PAYLOAD,
    "DS_REPLAY_MARKER_KEY",
    decodeKeyText(config.DS_REPLAY_MARKER_KEY, "DS_REPLAY_MARKER_KEY"),
    previous === undefined ? [] : [decodeKeyText(previous, "DS_REPLAY_MARKER_KEY_PREVIOUS")],
  );
}

/** What {@link DeliveryService.create} builds the DS from. */
export interface DeliveryServiceInit {
  /** The parsed config (deliveryConfigSchema: the one place with defaults). */
  config: DeliveryConfig;
  database: Pick<DatabaseHandle, "db" | "tryWithLock">;
  bus: Bus;
  logger: Logger;
  /** Clock in ms since the epoch (default Date.now); tests move it to trigger inactivity. */
  now?: () => number;
  /**
   * Sends requests about other domains' groups through the federation gateway; the caller closes
   * it. Default: one built from FEDERATION_PROXY_ADDRESS, closed by {@link DeliveryService.close}.
   */
  router?: FederationRouter;
}

/** The DS minus its gRPC server: handlers, and as workers the outbox relay, queue-deleted consumer, sweeper. */
export class DeliveryService {
  readonly registration: ServiceRegistration;
  /**
   * The background work for the runner to start in this order (and stop in reverse): outbox
   * relay, queue-deleted consumer, and with DS_SWEEP_INTERVAL the sweeper and request-id pruning.
   */
  readonly workers: readonly Worker[];
  private readonly router: FederationRouter;
  private readonly ownsRouter: boolean;

  private constructor(
    readonly ctx: DeliveryContext,
    private readonly relay: OutboxRelay,
    private readonly init: DeliveryServiceInit,
  ) {
    const { router, owned } = serviceFederationRouter(init.config, init.config.DS_DOMAIN, init.router);
    this.router = router;
    this.ownsRouter = owned;
    this.registration = deliveryRoutes(ctx, router);
    this.workers = this.workersOf(init);
  }

  /**
   * Builds the DS on a database (migrated with this package's migrations) and a bus, and declares
   * the streams its relay publishes into and its consumer reads.
   */
  static async create(init: DeliveryServiceInit): Promise<DeliveryService> {
    const { config, database, logger } = init;
    const cipherSuite = await getCiphersuiteImpl(
      getCiphersuiteFromName(PHOENIX_CIPHERSUITE),
      createNodeCryptoProvider(),
    );
    const sealer = outboxSealer(config);
    const relay = new OutboxRelay({
      database,
      bus: init.bus,
      sealer,
      pollIntervalMs: config.DS_RELAY_POLL_INTERVAL,
      onError: (err) => logger.warn({ err }, "outbox relay"),
    });
    const ctx: DeliveryContext = {
      db: database.db,
      cipherSuite,
      now: init.now ?? Date.now,
      domain: config.DS_DOMAIN,
      clientInactivityMs: config.DS_CLIENT_INACTIVITY,
      seenRequests: replayStore(config),
      replayWindow: REPLAY_WINDOW,
      paddingBuckets: paddingBuckets(config),
      reservationTtlMs: config.DS_RESERVATION_TTL,
      groupIdLimit: {
        limit: new NamedRateLimit(
          "group id requests per caller",
          "DS_CALLER_RATE_GROUP_ID_PER_MINUTE",
          config.DS_CALLER_RATE_GROUP_ID_PER_MINUTE,
          60_000,
        ),
        // Buckets keyed by HMACs under a key derived from DS_REPLAY_MARKER_KEY: a database copy
        // alone cannot test them against guessed caller addresses.
        store: await SharedRateLimits.open(database.db, {
          secret: new TextEncoder().encode(config.DS_REPLAY_MARKER_KEY),
        }),
        trustedProxies: trustedProxies(config.DS_TRUSTED_PROXIES),
      },
      fanOutSubject: config.DS_FANOUT_SUBJECT,
      onFanOut: () => relay.poke(),
      outboxSealer: sealer,
      queueReports: { max: config.DS_MAX_QUEUE_REPORTS, ttlMs: config.DS_QUEUE_REPORT_TTL },
      stateCache: new GroupStateCache<DsGroup>(
        {
          maxEntries: config.DS_STATE_CACHE_ENTRIES,
          maxBytes: config.DS_STATE_CACHE_BYTES,
          idleMs: config.DS_STATE_CACHE_IDLE,
        },
        init.now ?? Date.now,
      ),
    };
    await init.bus.ensureStream(fanOutStream(config.DS_FANOUT_STREAM, config.DS_FANOUT_SUBJECT));
    await init.bus.ensureStream(
      queueDeletedStream(config.DS_QUEUE_DELETED_STREAM, config.DS_QUEUE_DELETED_SUBJECT),
    );
    return new DeliveryService(ctx, relay, init);
  }

  private workersOf({ bus, config, logger }: DeliveryServiceInit): Worker[] {
    const workers = [
      outboxRelayWorker(this.relay, { startDelayMs: config.DS_RELAY_START_DELAY }),
      consumerWorker(
        "queue-deleted consumer",
        bus,
        { stream: config.DS_QUEUE_DELETED_STREAM, durable: config.DS_QUEUE_DELETED_CONSUMER },
        (msg) => handleQueueDeleted(this.ctx, msg),
      ),
    ];
    const every = config.DS_SWEEP_INTERVAL;
    if (every > 0) {
      workers.push(
        intervalWorker("sweeper", {
          intervalMs: every,
          run: () => this.sweep(),
          onError: (err) => logger.warn({ err }, "sweep failed"),
        }),
        // Request ids pile up with traffic: prune them once per replay window, not per sweep.
        intervalWorker("request-id pruning", {
          intervalMs: this.ctx.replayWindow.maxAgeMs,
          run: () => this.pruneRequestIds(),
          onError: (err) => logger.warn({ err }, "prune failed"),
        }),
      );
    }
    return workers;
  }

  /**
   * Deletes groups inactive beyond the limit, lapsed reservations, lapsed queue-deleted reports
   * and expired request ids.
   */
  async sweep(): Promise<{ groups: number; reservations: number; queueReports: number; requestIds: number }> {
    const now = this.ctx.now();
    const cutoff = activityMonth(now - this.init.config.DS_GROUP_INACTIVITY);
    return {
      groups: await deleteInactiveGroups(this.ctx.db, cutoff),
      reservations: await deleteExpiredReservations(this.ctx.db, new Date(now)),
      queueReports: await pruneQueueReports(this.ctx.db, dayOf(now)),
      requestIds: await this.pruneRequestIds(),
    };
  }

  /** Forgets request ids whose timestamps left the replay window. */
  pruneRequestIds(): Promise<number> {
    return this.ctx.seenRequests.sweep(this.ctx.db, new Date(this.ctx.now()));
  }

  /**
   * Closes the router it built, once the runner stopped the workers (the caller closes bus and
   * database afterwards).
   */
  close(): void {
    this.ctx.stateCache.close();
    if (this.ownsRouter) this.router.close();
  }
}
