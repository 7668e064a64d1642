import { toHex } from "@phoenix/crypto";
import { createNodeCryptoProvider, PHOENIX_CIPHERSUITE } from "@phoenix/mls";
import { queue } from "@phoenix/proto";
import {
  type Bus,
  type BusMessage,
  busTopology,
  fanOutStream,
  federationOutboundStream,
  queueDeletedStream,
  type Subscription,
} from "@phoenix/runtime/bus";
import type { DatabaseHandle } from "@phoenix/runtime/db";
import { type FederationRouter, federatedUnary, serviceFederationRouter } from "@phoenix/runtime/federation";
import {
  bidiStreaming,
  defineService,
  type GrpcServer,
  type GrpcServerConfig,
  type ServiceRegistration,
  startGrpcServer,
  unary,
} from "@phoenix/runtime/grpc";
import type { Logger } from "@phoenix/runtime/log";
import { OutboxRelay } from "@phoenix/runtime/outbox";
import { NamedRateLimit, trustedProxies } from "@phoenix/runtime/rate-limit";
import { sweepSeenRequests } from "@phoenix/runtime/replay";
import { lt } from "drizzle-orm";
import type { Registry } from "prom-client";
import { type CiphersuiteImpl, getCiphersuiteFromName, getCiphersuiteImpl } from "ts-mls";
import { blockGroup } from "./api/block-group.js";
import { createClient } from "./api/create-client.js";
import { createUser } from "./api/create-user.js";
import { deleteClient } from "./api/delete-client.js";
import { deleteUser } from "./api/delete-user.js";
import type { QsDeps, QsLimits, QsRateLimits } from "./api/deps.js";
import { dequeue } from "./api/dequeue.js";
import { fetchAddPackages, fetchAddPackagesDomain, limitFetchAddPackages } from "./api/fetch-add-packages.js";
import { getQueueConfigEncryptionKey } from "./api/get-queue-config-encryption-key.js";
import { getUser } from "./api/get-user.js";
import { getVerifyingKey } from "./api/get-verifying-key.js";
import { listen } from "./api/listen.js";
import { publishAddPackages } from "./api/publish-add-packages.js";
import { setPushToken } from "./api/set-push-token.js";
import { unblockGroup } from "./api/unblock-group.js";
import { updateClient } from "./api/update-client.js";
import { updateUser } from "./api/update-user.js";
import { Batcher } from "./consumer/batcher.js";
import { handleFanOutBatch } from "./consumer/fan-out-consumer.js";
import { updateIdleQueues } from "./consumer/idle-key-updates.js";
import { KeyRing } from "./domain/key-ring.js";
import { openStoredPushToken } from "./domain/push-token.js";
import { QueueConfigOpener } from "./domain/queue-config-opener.js";
import type { RatchetUpdatePolicy } from "./domain/queue-ratchet.js";
import { StorageKeys } from "./domain/storage-keys.js";
import { type QsSubjects, qsSubjects } from "./domain/subjects.js";
import { WebhookAddressPolicy } from "./domain/webhook-address.js";
import { ListenerHub } from "./live/listener-hub.js";
import { QsMetrics } from "./live/qs-metrics.js";
import { LoggingNotifier, type PushNotifier } from "./push/notifier.js";
import { ensureKeys } from "./store/keys-store.js";
import { deleteExpiredAuthKeys, deleteInactiveClients, expireMessages } from "./store/records-store.js";
import { qsHandledFanOuts } from "./store/schema.js";

const DAY = 24 * 3600 * 1000;

/** Bus streams the QS uses (names shared with the DS and the federation gateway). */
export interface QsStreams {
  /** Captures `phoenix.fanout` (default PHOENIX_FANOUT). */
  fanOut: string;
  /** Captures `phoenix.queue_deleted` (default PHOENIX_QUEUE_DELETED). */
  queueDeleted: string;
  /** Captures `phoenix.federation.outbound.>` (default PHOENIX_FEDERATION_OUTBOUND). */
  federation: string;
}

/** Everything the QS needs, injected (main.ts builds it from the environment). */
export interface QueueServiceOptions {
  database: Pick<DatabaseHandle, "db" | "tryWithLock">;
  bus: Bus;
  domain: string;
  logger: Logger;
  /** 32-byte storage key (encryption at rest, lookup hashes). */
  storageKey: Uint8Array;
  /** Operator-provided queue-config HPKE private key / signing seed (else generated). */
  providedConfigKey?: Uint8Array | undefined;
  providedSigningKey?: Uint8Array | undefined;
  keyRotationIntervalMs?: number;
  keyRetirementGraceMs?: number;
  /** How often replicas reload the keys (and rotate when due); 0: never (default 60 s). */
  keyRefreshIntervalMs?: number;
  limits?: Partial<QsLimits>;
  ratchetPolicy?: Partial<RatchetUpdatePolicy>;
  /**
   * A client auth key replaced by UpdateClient keeps verifying queue configs sealed with it this
   * long (default 30 days; 0: configs sealed with the old key fail at once).
   */
  authKeyGraceMs?: number;
  /**
   * Per-replica rate limits (requests per period; 0 disables one). Unset here: off — the
   * process (setupQueue) applies the QS_RATE_* defaults; embedders pass their config.
   */
  rateLimits?: Partial<QsRateLimitOptions>;
  /** Peers whose `x-forwarded-for` names the caller for per-caller limits (default none). */
  trustedProxies?: readonly string[];
  /** Client records inactive this long expire (default 90 days). */
  clientInactivityMs?: number;
  /**
   * Queued messages expire this long after they were enqueued (default 30 days; 0: never). Key
   * updates and the Init message never expire. Deleted by the sweep.
   */
  messageExpiryMs?: number;
  /**
   * How often idle queues get their time-based ratchet key update (queues without one for the
   * ratchet policy's `everyMs`); 0 disables (default 1 h).
   */
  idleKeyUpdateIntervalMs?: number;
  /** Sweep period for expired records and old fan-out markers; 0 disables (default 1 h). */
  sweepIntervalMs?: number;
  streams?: Partial<QsStreams>;
  /** Prefix of every bus subject (tests only; default ""). */
  subjectPrefix?: string;
  relayPollIntervalMs?: number;
  /** Clock in ms (default Date.now). */
  now?: () => number;
  /** Push notifications for clients without a live listener (default: log only). */
  notifier?: PushNotifier;
  /**
   * Webhook push URLs whose host is one of these names or an address in these IPs / CIDR blocks
   * may point into private ranges (QS_PUSH_WEBHOOK_ALLOW; default none). Checked when a client
   * sets an IP-literal URL; give the webhook notifier the same policy.
   */
  pushWebhookAllow?: readonly string[];
  /** Durable fan-out consumer name shared by all replicas (default "queue-fanout"). */
  fanOutDurable?: string;
  /** Fan-out messages handled at once, and so the largest batch (default 256). */
  fanOutMaxInFlight?: number;
  /** Unacked fan-outs come back after this long (default 30 s). */
  fanOutAckWaitMs?: number;
  /** Handled-fan-out markers are kept this long (default 30 days; longer than the stream's age). */
  fanOutMarkerRetentionMs?: number;
  /** Registry for the QS metrics (runService's `metrics.registry`); none: not exported. */
  metricsRegistry?: Registry;
  /** Run the fan-out consumer in this instance (default true; false: serve RPCs only). */
  consumeFanOuts?: boolean;
  /** Test hook: runs after a batch committed and before its messages are acked. */
  afterFanOutCommit?: () => Promise<void>;
  /**
   * Sends FetchAddPackages for other domains through the federation gateway; the caller closes
   * it. Default: one for `federationProxyAddress`, closed by {@link QueueService.stop}.
   */
  router?: FederationRouter;
  /** FEDERATION_PROXY_ADDRESS, when no `router` is given (unset: other domains are UNAVAILABLE). */
  federationProxyAddress?: string | undefined;
  /** Largest gRPC message to and from the federation gateway (GRPC_MAX_MESSAGE_BYTES). */
  maxMessageBytes?: number;
}

/** A running QS minus its gRPC server: handlers, key ring, fan-out consumer, relay, sweeper. */
export class QueueService {
  readonly registration: ServiceRegistration;
  readonly deps: QsDeps;
  readonly streams: QsStreams;
  readonly subjects: QsSubjects;
  private ring: KeyRing | undefined;
  private cs: Promise<CiphersuiteImpl> | undefined;
  private readonly notifier: PushNotifier;
  readonly metrics: QsMetrics;
  private readonly relay: OutboxRelay;
  private readonly subscriptions: Subscription[] = [];
  private timers: NodeJS.Timeout[] = [];
  private readonly router: FederationRouter;
  private readonly ownsRouter: boolean;

  private constructor(private readonly options: QueueServiceOptions) {
    const now = options.now ?? Date.now;
    const defaults = busTopology().streams;
    this.streams = {
      fanOut: options.streams?.fanOut ?? defaults.fanOut,
      queueDeleted: options.streams?.queueDeleted ?? defaults.queueDeleted,
      federation: options.streams?.federation ?? defaults.federation,
    };
    this.subjects = qsSubjects(options.subjectPrefix);
    this.deps = {
      db: options.database.db,
      domain: options.domain,
      storage: new StorageKeys(options.storageKey),
      keys: () => this.ring,
      replayWindow: { maxAgeMs: 5 * 60_000, maxFutureSkewMs: 60_000 },
      limits: {
        maxClientsPerUser: options.limits?.maxClientsPerUser ?? 10,
        maxDequeue: options.limits?.maxDequeue ?? 500,
        maxBlocklist: options.limits?.maxBlocklist ?? 10_000,
        maxQueueDepth: options.limits?.maxQueueDepth ?? 10_000,
      },
      ratchetPolicy: {
        everyMessages: options.ratchetPolicy?.everyMessages ?? 100,
        everyMs: options.ratchetPolicy?.everyMs ?? DAY,
      },
      authKeyGraceMs: options.authKeyGraceMs ?? 30 * DAY,
      rateLimits: rateLimitsOf(options.rateLimits ?? {}),
      trustedProxies: trustedProxies(options.trustedProxies ?? []),
      opener: new QueueConfigOpener(),
      webhookPolicy: new WebhookAddressPolicy(options.pushWebhookAllow ?? []),
      ciphersuite: () => {
        this.cs ??= getCiphersuiteImpl(
          getCiphersuiteFromName(PHOENIX_CIPHERSUITE),
          createNodeCryptoProvider(),
        );
        return this.cs;
      },
      listeners: new ListenerHub(options.bus, this.subjects, (err) =>
        options.logger.warn({ err }, "queue listener"),
      ),
      logger: options.logger,
      now,
    };
    this.relay = new OutboxRelay({
      database: options.database,
      bus: options.bus,
      sealer: this.deps.storage.outbox,
      ...(options.relayPollIntervalMs !== undefined ? { pollIntervalMs: options.relayPollIntervalMs } : {}),
      onError: (err) => options.logger.warn({ err }, "outbox relay"),
    });
    this.notifier = options.notifier ?? new LoggingNotifier(options.logger);
    this.metrics = new QsMetrics(options.metricsRegistry, () => this.deps.listeners.size);
    const d = this.deps;
    const { router, owned } = serviceFederationRouter(
      {
        FEDERATION_PROXY_ADDRESS: options.federationProxyAddress,
        ...(options.maxMessageBytes === undefined ? {} : { GRPC_MAX_MESSAGE_BYTES: options.maxMessageBytes }),
      },
      options.domain,
      options.router,
    );
    this.router = router;
    this.ownsRouter = owned;
    this.registration = defineService(queue.QueueServiceService, {
      getQueueConfigEncryptionKey: unary((req) => getQueueConfigEncryptionKey(d, req)),
      getVerifyingKey: unary((req) => getVerifyingKey(d, req)),
      createUser: unary((req, call) => createUser(d, req, call)),
      updateUser: unary((req) => updateUser(d, req)),
      getUser: unary((req) => getUser(d, req)),
      deleteUser: unary((req) => deleteUser(d, req)),
      createClient: unary((req) => createClient(d, req)),
      updateClient: unary((req) => updateClient(d, req)),
      deleteClient: unary((req) => deleteClient(d, req)),
      setPushToken: unary((req) => setPushToken(d, req)),
      publishAddPackages: unary((req) => publishAddPackages(d, req)),
      // The user holding the friendship token lives on `domain`: its QS keeps the AddPackages.
      fetchAddPackages: federatedUnary(
        queue.QueueServiceService.fetchAddPackages,
        router,
        fetchAddPackagesDomain,
        (req) => fetchAddPackages(d, req),
        { admit: (_req, call) => limitFetchAddPackages(d, call) },
      ),
      dequeue: unary((req) => dequeue(d, req)),
      listen: bidiStreaming((requests, ctx, stream) => listen(d, requests, ctx, stream)),
      blockGroup: unary((req) => blockGroup(d, req)),
      unblockGroup: unary((req) => unblockGroup(d, req)),
    });
  }

  /** Builds the service and loads (on first start: creates) its keys. */
  static async create(options: QueueServiceOptions): Promise<QueueService> {
    const service = new QueueService(options);
    await service.refreshKeys();
    return service;
  }

  /** The keys currently served. */
  get keyRing(): KeyRing | undefined {
    return this.ring;
  }

  /** Reloads the keys, rotating them when due (or now with `force`). */
  async refreshKeys(force = false): Promise<KeyRing> {
    const o = this.options;
    const records = await ensureKeys(this.deps.db, this.deps.storage, {
      now: new Date(this.deps.now()),
      rotationIntervalMs: o.keyRotationIntervalMs ?? 180 * DAY,
      retirementGraceMs: o.keyRetirementGraceMs ?? 365 * DAY,
      providedConfigKey: o.providedConfigKey,
      providedSigningKey: o.providedSigningKey,
      force,
    });
    const ring = new KeyRing(records);
    const ids = (r: KeyRing | undefined) => r?.configKeys.map((k) => toHex(k.keyId)).join(",");
    // A retired or removed key must not keep opening configs through the cache.
    if (ids(ring) !== ids(this.ring)) this.deps.opener.clear();
    this.ring = ring;
    return ring;
  }

  /** Starts the streams, the fan-out consumer, the outbox relay and the timers. */
  async start(): Promise<void> {
    const { bus, logger } = this.options;
    await bus.ensureStream(fanOutStream(this.streams.fanOut, this.subjects.fanOut));
    await bus.ensureStream(queueDeletedStream(this.streams.queueDeleted, this.subjects.queueDeleted));
    await bus.ensureStream(
      federationOutboundStream(this.streams.federation, this.subjects.federationPattern),
    );
    this.relay.start();
    if (this.options.consumeFanOuts !== false) {
      const batcher = new Batcher<BusMessage>(
        (messages) => this.handleBatch(messages),
        { maxItems: this.options.fanOutMaxInFlight ?? 256, maxWeight: 5000 },
        // Weight ~ KiB of payload: a batch of large fan-outs stays a reasonable transaction.
        (m) => 1 + Math.floor(m.data.length / 1024),
      );
      const subscription = await bus.consume(
        {
          stream: this.streams.fanOut,
          durable: this.options.fanOutDurable ?? busTopology().durables.queueFanOut,
          maxInFlight: this.options.fanOutMaxInFlight ?? 256,
          ackWaitMs: this.options.fanOutAckWaitMs ?? 30_000,
        },
        (message) => batcher.add(message),
      );
      this.subscriptions.push(subscription);
    }
    const every = (ms: number, what: string, run: () => Promise<unknown>) => {
      if (ms <= 0) return;
      const timer = setInterval(() => {
        run().catch((err: unknown) => logger.warn({ err }, `${what} failed`));
      }, ms);
      timer.unref();
      this.timers.push(timer);
    };
    every(this.options.keyRefreshIntervalMs ?? 60_000, "key refresh", () => this.refreshKeys());
    every(this.options.sweepIntervalMs ?? 3600_000, "sweep", () => this.sweep());
    every(this.options.idleKeyUpdateIntervalMs ?? 3600_000, "idle key updates", () =>
      this.updateIdleQueues(),
    );
  }

  /** Handles one batch of fan-outs, then wakes listeners, pushes and pokes the relay. */
  private async handleBatch(messages: BusMessage[]): Promise<void> {
    const d = this.deps;
    const stopTimer = this.metrics.batchSeconds.startTimer();
    const outcome = await handleFanOutBatch(
      {
        db: d.db,
        domain: d.domain,
        storage: d.storage,
        keys: d.keys,
        opener: d.opener,
        subjects: this.subjects,
        ratchetPolicy: d.ratchetPolicy,
        queuePolicy: {
          maxDepth: d.limits.maxQueueDepth,
          expiryMs: this.options.messageExpiryMs ?? 30 * DAY,
        },
        logger: d.logger,
        now: d.now,
        afterCommit: this.options.afterFanOutCommit,
      },
      messages,
    );
    stopTimer();
    this.metrics.batchSize.observe(messages.length);
    this.metrics.deliveries.inc(outcome.enqueued);
    this.metrics.dropped.inc(outcome.dropped);
    this.metrics.outbound.inc(outcome.outbound);
    this.metrics.fanOuts.inc({ outcome: "duplicate" }, outcome.duplicates);
    this.metrics.fanOuts.inc({ outcome: "handled" }, messages.length - outcome.duplicates);
    if (outcome.outbound > 0) this.relay.poke();
    for (const delivered of outcome.delivered) {
      d.listeners.notify(delivered.clientId, delivered.latestSeq).catch((err: unknown) => {
        d.logger.warn({ err }, "queue wake-up failed");
      });
      if (delivered.notify && !delivered.listening && delivered.encryptedPushToken !== null) {
        const token = openStoredPushToken(d.storage, delivered.encryptedPushToken, delivered.clientId);
        this.notifier
          .notify(token)
          .catch((err: unknown) => d.logger.warn({ err }, "push notification failed"));
      }
    }
  }

  /**
   * Gives every queue whose last ratchet key update is older than the policy's `everyMs` a key
   * update now (in batches of 500, at most 20 per run) and wakes its listeners; no push
   * notification (there is nothing for the user to read). Returns how many queues were updated.
   */
  async updateIdleQueues(): Promise<number> {
    const d = this.deps;
    let total = 0;
    for (let batch = 0; batch < 20; batch++) {
      const updated = await updateIdleQueues(d.db, d.storage, {
        now: d.now(),
        olderThanMs: d.ratchetPolicy.everyMs,
        limit: 500,
      });
      for (const u of updated) {
        d.listeners.notify(u.clientId, u.seq).catch((err: unknown) => {
          d.logger.warn({ err }, "queue wake-up failed");
        });
      }
      total += updated.length;
      if (updated.length < 500) break;
    }
    if (total > 0) d.logger.info({ queues: total }, "time-based key updates for idle queues");
    return total;
  }

  /** Deletes expired client records (and users left without clients) and expired messages. */
  async sweep(): Promise<{ clients: number; messages: number }> {
    const cutoff = new Date(this.deps.now() - (this.options.clientInactivityMs ?? 90 * DAY));
    const clients = await deleteInactiveClients(this.deps.db, cutoff);
    await deleteExpiredAuthKeys(this.deps.db, new Date(this.deps.now()));
    await sweepSeenRequests(this.deps.db, new Date(this.deps.now()));
    let messages = 0;
    // In slices, so one sweep never holds many queues locked at once.
    for (let slice = 0; slice < 1000; slice++) {
      const n = await expireMessages(this.deps.db, new Date(this.deps.now()), 5000);
      messages += n;
      if (n < 5000) break;
    }
    if (messages > 0) this.options.logger.info({ messages }, "expired queue messages deleted");
    const retention = this.options.fanOutMarkerRetentionMs ?? 30 * DAY;
    await this.deps.db
      .delete(qsHandledFanOuts)
      .where(lt(qsHandledFanOuts.handledAt, new Date(this.deps.now() - retention)));
    return { clients, messages };
  }

  /** Stops consumers, listeners, relay and timers and closes the router it built (the bus and database stay open). */
  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await Promise.all(this.subscriptions.splice(0).map((s) => s.stop()));
    await this.deps.listeners.close();
    await this.relay.stop();
    if (this.ownsRouter) this.router.close();
  }
}

/** The configurable rate limits: requests per period (ms), 0 disables one. */
export interface QsRateLimitOptions {
  fetchAddPackagesPerToken: { requests: number; periodMs: number };
  fetchAddPackagesPerCaller: { requests: number; periodMs: number };
  createUserPerCaller: { requests: number; periodMs: number };
}

const OFF = { requests: 0, periodMs: 60_000 };

function rateLimitsOf(o: Partial<QsRateLimitOptions>): QsRateLimits {
  const limit = (subject: string, variable: string, value: { requests: number; periodMs: number }) =>
    new NamedRateLimit(subject, variable, value.requests, value.periodMs);
  return {
    fetchAddPackagesPerToken: limit(
      "FetchAddPackages per friendship token",
      "QS_RATE_FETCH_ADD_PACKAGES_PER_TOKEN",
      o.fetchAddPackagesPerToken ?? OFF,
    ),
    fetchAddPackagesPerCaller: limit(
      "FetchAddPackages per caller",
      "QS_RATE_FETCH_ADD_PACKAGES_PER_CALLER",
      o.fetchAddPackagesPerCaller ?? OFF,
    ),
    createUserPerCaller: limit(
      "CreateUser per caller",
      "QS_RATE_CREATE_USER_PER_CALLER",
      o.createUserPerCaller ?? OFF,
    ),
  };
}

/** A QS served over gRPC: the in-process builder for tests and the all-in-one homeserver. */
export interface QueueServer {
  service: QueueService;
  server: GrpcServer;
  port: number;
  /** Shuts the gRPC server down, then stops the service. */
  stop(): Promise<void>;
}

/** Creates, starts and serves a QS on `grpc` (port 0 picks a free port). */
export async function startQueueServer(
  options: QueueServiceOptions & { grpc?: Partial<GrpcServerConfig> },
): Promise<QueueServer> {
  const service = await QueueService.create(options);
  await service.start();
  let server: GrpcServer;
  try {
    server = await startGrpcServer({
      services: [service.registration],
      config: {
        GRPC_HOST: "127.0.0.1",
        GRPC_PORT: 0,
        GRPC_MAX_MESSAGE_BYTES: 4 * 1024 * 1024,
        GRPC_DEFAULT_DEADLINE_MS: 30_000,
        ...options.grpc,
      },
      logger: options.logger,
    });
  } catch (error) {
    await service.stop();
    throw error;
  }
  return {
    service,
    server,
    port: server.port as number,
    async stop() {
      await server.shutdown({ graceMs: 2000 });
      await service.stop();
    },
  };
}
