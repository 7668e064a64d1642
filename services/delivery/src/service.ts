import { decodeKeyText, OUTBOX_PAYLOAD, PayloadSealer } from "@phoenix/crypto";
import { createNodeCryptoProvider, PHOENIX_CIPHERSUITE } from "@phoenix/mls";
import { delivery, fileDescriptorSet } from "@phoenix/proto";
import { type Bus, fanOutStream, queueDeletedStream, type Subscription } from "@phoenix/runtime/bus";
import type { Env } from "@phoenix/runtime/config";
import type { DatabaseHandle } from "@phoenix/runtime/db";
import { type FederationRouter, federatedUnary, serviceFederationRouter } from "@phoenix/runtime/federation";
import { defineService, type ServiceRegistration, unary } from "@phoenix/runtime/grpc";
import {
  openServiceStorage,
  type RunningService,
  type RunServiceOptions,
  runService,
  type ServiceRuntime,
  type ServiceSetup,
} from "@phoenix/runtime/lifecycle";
import type { Logger } from "@phoenix/runtime/log";
import { OutboxRelay } from "@phoenix/runtime/outbox";
import { NamedRateLimit, SharedRateLimits, trustedProxies } from "@phoenix/runtime/rate-limit";
import { ReplayStore } from "@phoenix/runtime/replay";
import { getCiphersuiteFromName, getCiphersuiteImpl } from "ts-mls";
import { connectionGroupInfo } from "./api/connection-group-info.js";
import { createGroup } from "./api/create-group.js";
import { deleteGroup } from "./api/delete-group.js";
import { signedGroupDomain } from "./api/destination.js";
import { externalCommitInfo } from "./api/external-commit-info.js";
import { groupOperation } from "./api/group-operation.js";
import { joinConnectionGroup } from "./api/join-connection-group.js";
import type { DsDeps } from "./api/pipeline.js";
import { handleQueueDeleted } from "./api/queue-deleted.js";
import { type GroupIdLimit, requestGroupId } from "./api/request-group-id.js";
import { resync } from "./api/resync.js";
import { selfRemove } from "./api/self-remove.js";
import { sendMessage } from "./api/send-message.js";
import { updateProfileKey } from "./api/update-profile-key.js";
import { updateQueueInfo } from "./api/update-queue-info.js";
import { welcomeInfo } from "./api/welcome-info.js";
import { type DeliveryConfig, deliveryConfigSchema, paddingBuckets } from "./config.js";
import { translateDeliveryError } from "./domain/errors.js";
import { dayOf } from "./domain/queue-reports.js";
import {
  activityMonth,
  deleteExpiredReservations,
  deleteInactiveGroups,
  pruneQueueReports,
} from "./store/group-store.js";
import { DELIVERY_MIGRATIONS } from "./store/migrations.js";

/** Accepted age / future skew of signed request timestamps. */
const REPLAY_WINDOW = { maxAgeMs: 5 * 60_000, maxFutureSkewMs: 60_000 } as const;

/**
 * The DS's replay guard, keyed with DS_REPLAY_MARKER_KEY (a secret of this deployment): the
 * stored markers are keyed hashes of the clients' random request ids, which someone holding only
 * the database cannot test against guessed requests. Markers under the previous key still count.
 */
function replayStore(settings: DeliverySettings): ReplayStore {
  const previous = settings.DS_REPLAY_MARKER_KEY_PREVIOUS;
  return new ReplayStore(
    decodeKeyText(settings.DS_REPLAY_MARKER_KEY, "DS_REPLAY_MARKER_KEY"),
    previous === undefined ? [] : [decodeKeyText(previous, "DS_REPLAY_MARKER_KEY_PREVIOUS")],
  );
}

/**
 * Seals fan-outs in the outbox under a key derived from DS_REPLAY_MARKER_KEY (the DS's one
 * secret, kept outside the database): relayed rows are deleted, but deleted rows stay readable in
 * the database files until overwritten. Rows sealed under the previous key still open.
 */
function outboxSealer(settings: DeliverySettings): PayloadSealer {
  const previous = settings.DS_REPLAY_MARKER_KEY_PREVIOUS;
  return new PayloadSealer(
    OUTBOX_PAYLOAD,
    "DS_REPLAY_MARKER_KEY",
    decodeKeyText(settings.DS_REPLAY_MARKER_KEY, "DS_REPLAY_MARKER_KEY"),
    previous === undefined ? [] : [decodeKeyText(previous, "DS_REPLAY_MARKER_KEY_PREVIOUS")],
  );
}

/** The DS's own settings, as parsed from the environment (the one place with defaults). */
export type DeliverySettings = Pick<
  DeliveryConfig,
  | "DS_DOMAIN"
  | "DS_REPLAY_MARKER_KEY"
  | "DS_REPLAY_MARKER_KEY_PREVIOUS"
  | "DS_CLIENT_INACTIVITY"
  | "DS_GROUP_INACTIVITY"
  | "DS_RESERVATION_TTL"
  | "DS_PADDING_BUCKETS"
  | "DS_SWEEP_INTERVAL"
  | "DS_MAX_QUEUE_REPORTS"
  | "DS_QUEUE_REPORT_TTL"
  | "DS_FANOUT_SUBJECT"
  | "DS_FANOUT_STREAM"
  | "DS_QUEUE_DELETED_SUBJECT"
  | "DS_QUEUE_DELETED_STREAM"
  | "DS_QUEUE_DELETED_CONSUMER"
  | "DS_RELAY_POLL_INTERVAL"
  | "DS_RELAY_START_DELAY"
  | "DS_CALLER_RATE_GROUP_ID_PER_MINUTE"
  | "DS_TRUSTED_PROXIES"
  | "FEDERATION_PROXY_ADDRESS"
  | "GRPC_MAX_MESSAGE_BYTES"
>;

/** Options of {@link createDeliveryService}: everything the DS needs, injected. */
export interface DeliveryServiceOptions {
  database: Pick<DatabaseHandle, "db" | "tryWithLock">;
  bus: Bus;
  logger: Logger;
  settings: DeliverySettings;
  /** Clock in ms (default Date.now); tests move it to trigger inactivity. */
  now?: () => number;
  /**
   * Sends requests about other domains' groups through the federation gateway; the caller closes
   * it. Default: one built from FEDERATION_PROXY_ADDRESS, closed by {@link DeliveryService.stop}.
   */
  router?: FederationRouter;
}

const Service = delivery.DeliveryServiceService;

/** A running DS minus its gRPC server: handlers, outbox relay, queue-deleted consumer, sweeper. */
export class DeliveryService {
  readonly registration: ServiceRegistration;
  private readonly relay: OutboxRelay;
  private subscription: Subscription | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private relayStartTimer: NodeJS.Timeout | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private readonly router: FederationRouter;
  private readonly ownsRouter: boolean;

  private constructor(
    readonly deps: DsDeps,
    private readonly options: DeliveryServiceOptions,
    groupIdLimit: GroupIdLimit,
  ) {
    this.relay = new OutboxRelay({
      database: options.database,
      bus: options.bus,
      sealer: deps.outboxSealer,
      pollIntervalMs: options.settings.DS_RELAY_POLL_INTERVAL,
      onError: (err) => options.logger.warn({ err }, "outbox relay"),
    });
    deps.onFanOut = () => this.relay.poke();
    const d = deps;
    const { router, owned } = serviceFederationRouter(
      options.settings,
      options.settings.DS_DOMAIN,
      options.router,
    );
    this.router = router;
    this.ownsRouter = owned;
    // A request about a group of another domain goes to that group's DS through the federation
    // gateway, the client's signature untouched; the group id is inside the signed tbs.
    this.registration = defineService(Service, {
      requestGroupId: unary((req, call) => requestGroupId(d, groupIdLimit, req, call)),
      createGroup: unary((req) => createGroup(d, req)),
      groupOperation: federatedUnary(
        Service.groupOperation,
        router,
        signedGroupDomain(delivery.GroupOperationTbs),
        (req) => groupOperation(d, req),
      ),
      joinConnectionGroup: federatedUnary(
        Service.joinConnectionGroup,
        router,
        signedGroupDomain(delivery.JoinConnectionGroupTbs),
        (req) => joinConnectionGroup(d, req),
      ),
      resync: federatedUnary(Service.resync, router, signedGroupDomain(delivery.ResyncTbs), (req) =>
        resync(d, req),
      ),
      selfRemove: federatedUnary(
        Service.selfRemove,
        router,
        signedGroupDomain(delivery.SelfRemoveTbs),
        (req) => selfRemove(d, req),
      ),
      sendMessage: federatedUnary(
        Service.sendMessage,
        router,
        signedGroupDomain(delivery.SendMessageTbs),
        (req) => sendMessage(d, req),
      ),
      deleteGroup: federatedUnary(
        Service.deleteGroup,
        router,
        signedGroupDomain(delivery.DeleteGroupTbs),
        (req) => deleteGroup(d, req),
      ),
      welcomeInfo: federatedUnary(
        Service.welcomeInfo,
        router,
        signedGroupDomain(delivery.WelcomeInfoTbs),
        (req) => welcomeInfo(d, req),
      ),
      externalCommitInfo: federatedUnary(
        Service.externalCommitInfo,
        router,
        signedGroupDomain(delivery.ExternalCommitInfoTbs),
        (req) => externalCommitInfo(d, req),
      ),
      connectionGroupInfo: federatedUnary(
        Service.connectionGroupInfo,
        router,
        (req) => req.groupId?.domain ?? "",
        (req) => connectionGroupInfo(d, req),
      ),
      updateQueueInfo: federatedUnary(
        Service.updateQueueInfo,
        router,
        signedGroupDomain(delivery.UpdateQueueInfoTbs),
        (req) => updateQueueInfo(d, req),
      ),
      updateProfileKey: federatedUnary(
        Service.updateProfileKey,
        router,
        signedGroupDomain(delivery.UpdateProfileKeyTbs),
        (req) => updateProfileKey(d, req),
      ),
    });
  }

  /** Builds the DS on a database (migrated with this package's migrations) and a bus. */
  static async create(options: DeliveryServiceOptions): Promise<DeliveryService> {
    const cipherSuite = await getCiphersuiteImpl(
      getCiphersuiteFromName(PHOENIX_CIPHERSUITE),
      createNodeCryptoProvider(),
    );
    const { settings } = options;
    const deps: DsDeps = {
      db: options.database.db,
      ctx: {
        cipherSuite,
        now: options.now ?? Date.now,
        domain: settings.DS_DOMAIN,
        clientInactivityMs: settings.DS_CLIENT_INACTIVITY,
      },
      seenRequests: replayStore(settings),
      replayWindow: REPLAY_WINDOW,
      paddingBuckets: paddingBuckets(settings),
      reservationTtlMs: settings.DS_RESERVATION_TTL,
      fanOutSubject: settings.DS_FANOUT_SUBJECT,
      onFanOut: () => {},
      outboxSealer: outboxSealer(settings),
      queueReports: { max: settings.DS_MAX_QUEUE_REPORTS, ttlMs: settings.DS_QUEUE_REPORT_TTL },
    };
    const groupIdLimit: GroupIdLimit = {
      limit: new NamedRateLimit(
        "group id requests per caller",
        "DS_CALLER_RATE_GROUP_ID_PER_MINUTE",
        settings.DS_CALLER_RATE_GROUP_ID_PER_MINUTE,
        60_000,
      ),
      // Buckets keyed by HMACs under a key derived from DS_REPLAY_MARKER_KEY: a database copy
      // alone cannot test them against guessed caller addresses.
      store: await SharedRateLimits.open(options.database.db, {
        secret: new TextEncoder().encode(settings.DS_REPLAY_MARKER_KEY),
      }),
      trustedProxies: trustedProxies(settings.DS_TRUSTED_PROXIES),
    };
    return new DeliveryService(deps, options, groupIdLimit);
  }

  /** Starts the relay, the queue-deleted consumer and the sweeper. */
  async start(): Promise<void> {
    const { bus, settings } = this.options;
    await bus.ensureStream(fanOutStream(settings.DS_FANOUT_STREAM, settings.DS_FANOUT_SUBJECT));
    const stream = settings.DS_QUEUE_DELETED_STREAM;
    await bus.ensureStream(queueDeletedStream(stream, settings.DS_QUEUE_DELETED_SUBJECT));
    this.subscription = await bus.consume({ stream, durable: settings.DS_QUEUE_DELETED_CONSUMER }, (msg) =>
      handleQueueDeleted(this.deps, msg),
    );
    const delay = settings.DS_RELAY_START_DELAY;
    if (delay > 0) this.relayStartTimer = setTimeout(() => this.relay.start(), delay);
    else this.relay.start();
    const every = settings.DS_SWEEP_INTERVAL;
    if (every > 0) {
      this.sweepTimer = setInterval(() => {
        this.sweep().catch((err: unknown) => this.options.logger.warn({ err }, "sweep failed"));
      }, every);
      this.sweepTimer.unref();
      // Request ids pile up with traffic: prune them once per replay window, not per sweep.
      this.pruneTimer = setInterval(() => {
        this.pruneRequestIds().catch((err: unknown) => this.options.logger.warn({ err }, "prune failed"));
      }, this.deps.replayWindow.maxAgeMs);
      this.pruneTimer.unref();
    }
  }

  /**
   * Deletes groups inactive beyond the limit, lapsed reservations, lapsed queue-deleted reports
   * and expired request ids.
   */
  async sweep(): Promise<{ groups: number; reservations: number; queueReports: number; requestIds: number }> {
    const now = this.deps.ctx.now();
    const cutoff = activityMonth(now - this.options.settings.DS_GROUP_INACTIVITY);
    return {
      groups: await deleteInactiveGroups(this.deps.db, cutoff),
      reservations: await deleteExpiredReservations(this.deps.db, new Date(now)),
      queueReports: await pruneQueueReports(this.deps.db, dayOf(now)),
      requestIds: await this.pruneRequestIds(),
    };
  }

  /** Forgets request ids whose timestamps left the replay window. */
  pruneRequestIds(): Promise<number> {
    return this.deps.seenRequests.sweep(this.deps.db, new Date(this.deps.ctx.now()));
  }

  /**
   * Stops sweeper, consumer and relay and closes the router it built (the caller closes bus and
   * database afterwards).
   */
  async stop(): Promise<void> {
    clearInterval(this.sweepTimer);
    clearTimeout(this.relayStartTimer);
    clearInterval(this.pruneTimer);
    await this.subscription?.stop();
    await this.relay.stop();
    if (this.ownsRouter) this.router.close();
  }
}

/** Builds the DS service (see {@link DeliveryService}). */
export function createDeliveryService(options: DeliveryServiceOptions): Promise<DeliveryService> {
  return DeliveryService.create(options);
}

/** Resources an embedding process already holds (tests, the all-in-one homeserver). */
export interface DeliveryResources {
  /** The federation router (see {@link DeliveryServiceOptions.router}); the embedder closes it. */
  router?: FederationRouter;
  /** Used instead of opening DATABASE_URL / DATA_DIR; the embedder closes it. */
  database?: Pick<DatabaseHandle, "db" | "tryWithLock">;
  /** Used instead of opening NATS_URL / the embedded bus; the embedder closes it. */
  bus?: Bus;
  /** Clock in ms (default Date.now). */
  now?: () => number;
}

/** What {@link setupDelivery} hands to `runService`, plus the DS it built. */
export interface DeliverySetup extends ServiceSetup {
  service: DeliveryService;
}

/**
 * The DS's `runService` setup: opens the database (migrated) and the bus unless given, starts
 * the DS (relay, queue-deleted consumer, sweeper) and registers everything for shutdown: the DS
 * stops before the bus and the database it uses close.
 */
export async function setupDelivery(
  runtime: ServiceRuntime<DeliveryConfig>,
  resources: DeliveryResources = {},
): Promise<DeliverySetup> {
  const { config, logger, onShutdown } = runtime;
  const { database, bus } = await openServiceStorage(
    runtime,
    { name: "delivery", migrationsFolder: DELIVERY_MIGRATIONS },
    resources,
  );
  const service = await createDeliveryService({
    database,
    bus,
    logger,
    settings: config,
    ...(resources.now ? { now: resources.now } : {}),
    ...(resources.router ? { router: resources.router } : {}),
  });
  onShutdown(service, "delivery service");
  await service.start();
  logger.info({ domain: config.DS_DOMAIN }, "delivery service ready");
  return {
    service,
    services: [service.registration],
    reflection: { descriptorSet: fileDescriptorSet() },
    translateError: translateDeliveryError,
  };
}

/** Options of {@link startDelivery}. */
export interface StartDeliveryOptions extends DeliveryResources {
  /** The DS's environment (GRPC_PORT / METRICS_PORT 0 pick free ports). */
  env: Env;
  logDestination?: RunServiceOptions<typeof deliveryConfigSchema>["logDestination"];
}

/** The DS running in this process (tests, the all-in-one homeserver). */
export interface RunningDelivery {
  service: DeliveryService;
  runtime: RunningService<DeliveryConfig>;
  port: number;
  /** Graceful shutdown (drain, then close what the DS opened); rejects if something failed to close. */
  stop(): Promise<void>;
}

/** Runs the DS in-process through `runService` without signal handlers or process exit. */
export async function startDelivery(options: StartDeliveryOptions): Promise<RunningDelivery> {
  let service: DeliveryService | undefined;
  const runtime = await runService({
    config: deliveryConfigSchema,
    env: options.env,
    signals: false,
    exit: false,
    ...(options.logDestination ? { logDestination: options.logDestination } : {}),
    async setup(rt) {
      const built = await setupDelivery(rt, options);
      service = built.service;
      return built;
    },
  });
  if (service === undefined) throw new Error("runService returned without running setup");
  return {
    service,
    runtime,
    port: runtime.grpcPort,
    async stop() {
      const code = await runtime.shutdown("stop");
      if (code !== 0) throw new Error(`the delivery service shut down with code ${code}`);
    },
  };
}
