import { setTimeout as sleep } from "node:timers/promises";
import { fromHex, toHex } from "@phoenix/crypto";
import { createNodeCryptoProvider, PHOENIX_CIPHERSUITE } from "@phoenix/mls";
import {
  type Bus,
  type BusMessage,
  fanOutStream,
  federationOutboundStream,
  queueDeletedStream,
} from "@phoenix/runtime/bus";
import { type DatabaseHandle, deleteAdminAuditBefore } from "@phoenix/runtime/db";
import { type FederationRouter, serviceFederationRouter } from "@phoenix/runtime/federation";
import type { ServiceRegistration } from "@phoenix/runtime/grpc";
import type { Logger } from "@phoenix/runtime/log";
import { intervalWorker, leaderWorker, outboxRelayWorker, type Worker } from "@phoenix/runtime/module";
import { OutboxRelay } from "@phoenix/runtime/outbox";
import { NamedRateLimit, trustedProxies } from "@phoenix/runtime/rate-limit";
import { sweepSeenRequests } from "@phoenix/runtime/replay";
import type { Registry } from "prom-client";
import { type CiphersuiteImpl, getCiphersuiteFromName, getCiphersuiteImpl } from "ts-mls";
import type { QsRateLimits, QueueContext } from "./api/context.js";
import type { QueueConfig } from "./config.js";
import { fillAddPackageExpiry } from "./consumer/add-package-expiry.js";
import { Batcher } from "./consumer/batcher.js";
import { handleFanOutBatch } from "./consumer/fan-out-consumer.js";
import { updateIdleQueues } from "./consumer/idle-key-updates.js";
import { KeyRing } from "./domain/key-ring.js";
import { openStoredPushToken } from "./domain/push-token.js";
import { QueueConfigOpener } from "./domain/queue-config-opener.js";
import { HashPurpose, StorageKeys } from "./domain/storage-keys.js";
import { type QsSubjects, qsSubjects } from "./domain/subjects.js";
import { WebhookAddressPolicy } from "./domain/webhook-address.js";
import { ListenerHub } from "./live/listener-hub.js";
import { QsMetrics } from "./live/qs-metrics.js";
import { PushCoalescer } from "./push/coalescer.js";
import { LoggingNotifier, type PushNotifier } from "./push/notifier.js";
import { queueRoutes } from "./routes.js";
import { deleteExpiredAddPackages } from "./store/add-packages.js";
import { deleteExpiredAuthKeys } from "./store/auth-keys.js";
import { clearPushTokenIf, deleteInactiveClients } from "./store/clients.js";
import { deleteFanOutMarkersBefore } from "./store/fan-out-markers.js";
import { ensureKeys } from "./store/keys-store.js";
import { expireMessages } from "./store/queues.js";

/** A push waiting for its queue's turn (the token as stored at rest, opened when it goes out). */
interface PushJob {
  clientId: Uint8Array;
  encryptedPushToken: Uint8Array;
}

/** Bus streams the QS uses (names shared with the DS and the federation gateway). */
export interface QsStreams {
  /** Captures `phoenix.fanout` (QS_FANOUT_STREAM). */
  fanOut: string;
  /** Captures `phoenix.queue_deleted` (QS_QUEUE_DELETED_STREAM). */
  queueDeleted: string;
  /** Captures `phoenix.federation.outbound.>` (QS_FEDERATION_STREAM). */
  federation: string;
}

/**
 * Timers and test hooks of a QS that no operator sets (so not in the config schema): the
 * defaults below are the only ones.
 */
/**
 * Advisory lock key ("phnxfout") of the one QS replica per database that consumes fan-outs: the
 * others stand by (see `leadFanOut`).
 */
export const FAN_OUT_LEADER_LOCK_KEY = 0x70686e78666f7574n;

export interface QueueServiceHooks {
  /** Clock in ms since the epoch (default Date.now). */
  now?: () => number;
  /** How often replicas reload the keys (and rotate when due); 0: never (default 60 s). */
  keyRefreshIntervalMs?: number;
  /** Sweep period for expired records and old fan-out markers; 0 disables (default 1 h). */
  sweepIntervalMs?: number;
  relayPollIntervalMs?: number;
  /** Unacked fan-outs come back after this long (default 30 s). */
  fanOutAckWaitMs?: number;
  /** Handled-fan-out markers are kept this long (default QS_FANOUT_MARKER_RETENTION). */
  fanOutMarkerRetentionMs?: number;
  /** How often a replica that does not lead the fan-out consumer tries to take over (default 1 s). */
  fanOutLeaderRetryMs?: number;
  /** Pauses before an ordered retry of a failed fan-out batch (default 250, 1000, 5000 ms, the last repeating). */
  fanOutRetryDelaysMs?: number[];
  /** Run the fan-out consumer in this instance (default true; false: serve RPCs only). */
  consumeFanOuts?: boolean;
  /** Runs after a batch committed and before its messages are acked (crash tests). */
  afterFanOutCommit?: () => Promise<void>;
}

/** What a QS is built from: its parsed config and what its host opened. */
export interface QueueServiceInit {
  config: QueueConfig;
  database: Pick<DatabaseHandle, "db" | "tryWithLock">;
  bus: Bus;
  logger: Logger;
  /** 32-byte storage key (encryption at rest, lookup hashes): see `loadStorageKey`. */
  storageKey: Uint8Array;
  /** Push notifications for clients without a live listener (default: log only). */
  notifier?: PushNotifier;
  /** Registry for the QS metrics (the host's `metrics.registry`); none: not exported. */
  metricsRegistry?: Registry;
  /**
   * Sends FetchAddPackages for other domains through the federation gateway; the caller closes
   * it. Default: one for FEDERATION_PROXY_ADDRESS, closed by {@link QueueService.close}.
   */
  router?: FederationRouter;
  hooks?: QueueServiceHooks;
}

/** The QS minus its gRPC server: handlers, key ring, and as workers relay, fan-out consumer, timers. */
export class QueueService {
  readonly registration: ServiceRegistration;
  /** What every RPC handler is given. */
  readonly ctx: QueueContext;
  readonly streams: QsStreams;
  readonly subjects: QsSubjects;
  private ring: KeyRing | undefined;
  private cs: Promise<CiphersuiteImpl> | undefined;
  private readonly notifier: PushNotifier;
  private readonly pushes: PushCoalescer<PushJob>;
  readonly metrics: QsMetrics;
  private readonly relay: OutboxRelay;
  /**
   * The background work for the runner to start in this order (and stop in reverse): outbox
   * relay, fan-out consumer (unless `consumeFanOuts` is false), key refresh, sweep, idle key
   * updates (each timer unless its interval is 0).
   */
  readonly workers: readonly Worker[];
  private readonly router: FederationRouter;
  private readonly ownsRouter: boolean;
  private readonly config: QueueConfig;
  private readonly hooks: QueueServiceHooks;

  private constructor(private readonly init: QueueServiceInit) {
    const { config, logger } = init;
    this.config = config;
    this.hooks = init.hooks ?? {};
    this.streams = {
      fanOut: config.QS_FANOUT_STREAM,
      queueDeleted: config.QS_QUEUE_DELETED_STREAM,
      federation: config.QS_FEDERATION_STREAM,
    };
    this.subjects = qsSubjects(config.QS_SUBJECT_PREFIX);
    this.ctx = {
      db: init.database.db,
      domain: config.QS_DOMAIN,
      storage: new StorageKeys(init.storageKey),
      keys: () => this.ring,
      replayWindow: { maxAgeMs: 5 * 60_000, maxFutureSkewMs: 60_000 },
      limits: {
        maxClientsPerUser: config.QS_MAX_CLIENTS_PER_USER,
        maxDequeue: config.QS_MAX_DEQUEUE,
        maxBlocklist: config.QS_MAX_BLOCKLIST,
        maxQueueDepth: config.QS_MAX_QUEUE_DEPTH,
        addPackageLifetimeMs: config.QS_ADD_PACKAGE_LIFETIME,
      },
      ratchetPolicy: {
        everyMessages: config.QS_RATCHET_UPDATE_MESSAGES,
        everyMs: config.QS_RATCHET_UPDATE_INTERVAL,
      },
      authKeyGraceMs: config.QS_AUTH_KEY_GRACE,
      rateLimits: rateLimitsOf(config),
      trustedProxies: trustedProxies(config.QS_TRUSTED_PROXIES),
      opener: new QueueConfigOpener(),
      webhookPolicy: new WebhookAddressPolicy(config.QS_PUSH_WEBHOOK_ALLOW),
      ciphersuite: () => {
        this.cs ??= getCiphersuiteImpl(
          getCiphersuiteFromName(PHOENIX_CIPHERSUITE),
          createNodeCryptoProvider(),
        );
        return this.cs;
      },
      listeners: new ListenerHub(init.bus, this.subjects, (err) => logger.warn({ err }, "queue listener")),
      logger,
      now: this.hooks.now ?? Date.now,
    };
    this.relay = new OutboxRelay({
      database: init.database,
      bus: init.bus,
      sealer: this.ctx.storage.outbox,
      ...(this.hooks.relayPollIntervalMs !== undefined
        ? { pollIntervalMs: this.hooks.relayPollIntervalMs }
        : {}),
      onError: (err) => logger.warn({ err }, "outbox relay"),
    });
    this.notifier = init.notifier ?? new LoggingNotifier(logger);
    this.pushes = new PushCoalescer(config.QS_PUSH_MIN_INTERVAL, (job) => this.push(job));
    this.metrics = new QsMetrics(init.metricsRegistry, () => this.ctx.listeners.size);
    const { router, owned } = serviceFederationRouter(config, config.QS_DOMAIN, init.router);
    this.router = router;
    this.ownsRouter = owned;
    this.registration = queueRoutes(this.ctx, router);
    this.workers = this.workersOf(init);
  }

  /**
   * Builds the service, loads (on first start: creates) its keys and declares the streams it
   * consumes and publishes into.
   */
  static async create(init: QueueServiceInit): Promise<QueueService> {
    const service = new QueueService(init);
    await service.refreshKeys();
    await fillAddPackageExpiry(service.ctx.db, service.ctx.storage, {
      now: service.ctx.now(),
      lifetimeMs: init.config.QS_ADD_PACKAGE_LIFETIME,
    });
    const { streams, subjects } = service;
    await init.bus.ensureStream(fanOutStream(streams.fanOut, subjects.fanOut, init.config.QS_FANOUT_DURABLE));
    await init.bus.ensureStream(queueDeletedStream(streams.queueDeleted, subjects.queueDeleted));
    await init.bus.ensureStream(federationOutboundStream(streams.federation, subjects.federationPattern));
    return service;
  }

  /** The keys currently served. */
  get keyRing(): KeyRing | undefined {
    return this.ring;
  }

  /** Reloads the keys, rotating them when due (or now with `force`). */
  async refreshKeys(force = false): Promise<KeyRing> {
    const { config } = this;
    const records = await ensureKeys(this.ctx.db, this.ctx.storage, {
      now: new Date(this.ctx.now()),
      rotationIntervalMs: config.QS_KEY_ROTATION_INTERVAL,
      retirementGraceMs: config.QS_KEY_RETIREMENT_GRACE,
      providedConfigKey: hexKey(config.QS_QUEUE_CONFIG_PRIVATE_KEY),
      providedSigningKey: hexKey(config.QS_SIGNING_KEY_SEED),
      force,
    });
    const ring = new KeyRing(records);
    const ids = (r: KeyRing | undefined) => r?.configKeys.map((k) => toHex(k.keyId)).join(",");
    // A retired or removed key must not keep opening configs through the cache.
    if (ids(ring) !== ids(this.ring)) this.ctx.opener.clear();
    this.ring = ring;
    return ring;
  }

  private workersOf({ bus, logger }: QueueServiceInit): Worker[] {
    const { config, hooks } = this;
    const workers = [outboxRelayWorker(this.relay)];
    if (hooks.consumeFanOuts !== false) {
      workers.push(
        leaderWorker("fan-out consumer", {
          database: this.init.database,
          lockKey: FAN_OUT_LEADER_LOCK_KEY,
          retryMs: hooks.fanOutLeaderRetryMs ?? 1000,
          lead: (signal) => this.leadFanOut(bus, logger, signal),
          onError: (err) => logger.warn({ err }, "fan-out consumer: taking the lead failed"),
          onLeading: (leading) => {
            this.metrics.fanOutLeader.set(leading ? 1 : 0);
            logger.info(
              leading ? "fan-out consumer: this replica leads" : "fan-out consumer: stopped leading",
            );
          },
        }),
      );
    }
    const every = (intervalMs: number, name: string, run: () => Promise<unknown>) => {
      if (intervalMs <= 0) return;
      workers.push(
        intervalWorker(name, { intervalMs, run, onError: (err) => logger.warn({ err }, `${name} failed`) }),
      );
    };
    every(hooks.keyRefreshIntervalMs ?? 60_000, "key refresh", () => this.refreshKeys());
    every(hooks.sweepIntervalMs ?? 3600_000, "sweep", () => this.sweep());
    every(config.QS_IDLE_KEY_UPDATE_CHECK_INTERVAL, "idle key updates", () => this.updateIdleQueues());
    return workers;
  }

  /**
   * The fan-out consumer of the replica that leads (one at a time, under FAN_OUT_LEADER_LOCK_KEY),
   * so that a recipient's queue gets its fan-outs in the order the DS published them:
   * - at most QS_FANOUT_MAX_IN_FLIGHT messages of the durable are handed out and not acked
   *   (`maxAckPending`), so no later message overtakes a held one;
   * - a failed batch is retried as a whole while later ones wait (order before progress);
   * - taking over from a leader that left messages unacked, it recreates the durable (the bus's
   *   `resetDurable`), so those come first and in stream order (already handled ones again, which
   *   the fan-out markers turn into no-ops); a bus without it (embedded: one process) waits out
   *   their ack wait instead.
   */
  private async leadFanOut(
    bus: Bus,
    logger: Logger,
    signal: AbortSignal,
  ): Promise<{ stop(): Promise<void> }> {
    const { config, hooks } = this;
    const ackWaitMs = hooks.fanOutAckWaitMs ?? 30_000;
    const stream = this.streams.fanOut;
    const durable = config.QS_FANOUT_DURABLE;
    const held = (await bus.consumerLag?.())?.find((l) => l.stream === stream && l.durable === durable);
    if (held !== undefined && held.ackPending > 0) {
      logger.info(
        { ackPending: held.ackPending },
        "fan-out consumer: the last leader left messages unacked; handing them out again, first",
      );
      if (bus.resetDurable) await bus.resetDurable(stream, durable);
      else {
        await sleep(ackWaitMs + 1000, undefined, { signal }).catch(() => undefined);
        if (signal.aborted) return { stop: async () => undefined };
      }
    }
    const batcher = new Batcher<BusMessage>(
      (messages) => this.handleBatch(messages),
      {
        maxItems: config.QS_FANOUT_MAX_IN_FLIGHT,
        maxWeight: 5000,
        orderedRetryDelaysMs: hooks.fanOutRetryDelaysMs ?? [250, 1000, 5000],
        onRetry: (err, attempt) => logger.warn({ err, attempt }, "fan-out batch failed; retrying it"),
      },
      // Weight ~ KiB of payload: a batch of large fan-outs stays a reasonable transaction.
      (m) => 1 + Math.floor(m.data.length / 1024),
    );
    const subscription = await bus.consume(
      {
        stream,
        durable,
        maxInFlight: config.QS_FANOUT_MAX_IN_FLIGHT,
        maxAckPending: config.QS_FANOUT_MAX_IN_FLIGHT,
        ackWaitMs,
      },
      (message) => batcher.add(message),
    );
    return {
      async stop() {
        // Waiting items go back to the bus first, so the subscription's drain does not wait on them.
        batcher.close();
        await subscription.stop();
      },
    };
  }

  /** Handles one batch of fan-outs, then wakes listeners, pushes and pokes the relay. */
  private async handleBatch(messages: BusMessage[]): Promise<void> {
    const ctx = this.ctx;
    const stopTimer = this.metrics.batchSeconds.startTimer();
    const outcome = await handleFanOutBatch(
      {
        db: ctx.db,
        domain: ctx.domain,
        storage: ctx.storage,
        keys: ctx.keys,
        opener: ctx.opener,
        subjects: this.subjects,
        ratchetPolicy: ctx.ratchetPolicy,
        queuePolicy: {
          maxDepth: ctx.limits.maxQueueDepth,
          expiryMs: this.config.QS_MESSAGE_EXPIRY,
        },
        logger: ctx.logger,
        now: ctx.now,
        afterCommit: this.hooks.afterFanOutCommit,
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
      ctx.listeners.notify(delivered.clientId, delivered.latestSeq).catch((err: unknown) => {
        ctx.logger.warn({ err }, "queue wake-up failed");
      });
      if (delivered.notify && !delivered.listening && delivered.encryptedPushToken !== null) {
        const now = this.pushes.request(toHex(delivered.clientId), {
          clientId: delivered.clientId,
          encryptedPushToken: delivered.encryptedPushToken,
        });
        if (!now) this.metrics.pushes.inc({ outcome: "coalesced" });
      }
    }
  }

  /**
   * Sends one push. The provider learns the device token, a collapse id that is a keyed hash of
   * the queue id, and that something is waiting — no message, sender or group. A token the
   * provider calls unregistered is deleted (unless the client replaced it meanwhile), so the
   * next delivery sends nothing.
   */
  private push(job: PushJob): void {
    const ctx = this.ctx;
    const send = async () => {
      const token = openStoredPushToken(ctx.storage, job.encryptedPushToken, job.clientId);
      const collapseId = Buffer.from(ctx.storage.hash(HashPurpose.PushCollapse, job.clientId))
        .subarray(0, 16)
        .toString("base64url");
      const outcome = await this.notifier.notify(token, { collapseId });
      this.metrics.pushes.inc({ outcome });
      if (outcome === "unregistered") {
        const deleted = await clearPushTokenIf(ctx.db, job.clientId, job.encryptedPushToken);
        ctx.logger.info({ deleted }, "push token unregistered by its provider");
      }
    };
    send().catch((err: unknown) => {
      this.metrics.pushes.inc({ outcome: "failed" });
      ctx.logger.warn({ err }, "push notification failed");
    });
  }

  /**
   * Gives every queue whose last ratchet key update is older than the policy's `everyMs` a key
   * update now (in batches of 500, at most 20 per run) and wakes its listeners; no push
   * notification (there is nothing for the user to read). Returns how many queues were updated.
   */
  async updateIdleQueues(): Promise<number> {
    const ctx = this.ctx;
    let total = 0;
    for (let batch = 0; batch < 20; batch++) {
      const updated = await updateIdleQueues(ctx.db, ctx.storage, {
        now: ctx.now(),
        olderThanMs: ctx.ratchetPolicy.everyMs,
        limit: 500,
      });
      for (const u of updated) {
        ctx.listeners.notify(u.clientId, u.seq).catch((err: unknown) => {
          ctx.logger.warn({ err }, "queue wake-up failed");
        });
      }
      total += updated.length;
      if (updated.length < 500) break;
    }
    if (total > 0) ctx.logger.info({ queues: total }, "time-based key updates for idle queues");
    return total;
  }

  /**
   * Deletes expired client records (and users left without clients), expired messages and
   * expired AddPackages.
   */
  async sweep(): Promise<{ clients: number; messages: number; addPackages: number; auditRows: number }> {
    const cutoff = new Date(this.ctx.now() - this.config.QS_CLIENT_INACTIVITY);
    const clients = await deleteInactiveClients(this.ctx.db, cutoff);
    await deleteExpiredAuthKeys(this.ctx.db, new Date(this.ctx.now()));
    await sweepSeenRequests(this.ctx.db, new Date(this.ctx.now()));
    let messages = 0;
    // In slices, so one sweep never holds many queues locked at once.
    for (let slice = 0; slice < 1000; slice++) {
      const n = await expireMessages(this.ctx.db, new Date(this.ctx.now()), 5000);
      messages += n;
      if (n < 5000) break;
    }
    if (messages > 0) this.init.logger.info({ messages }, "expired queue messages deleted");
    const retention = this.hooks.fanOutMarkerRetentionMs ?? this.config.QS_FANOUT_MARKER_RETENTION;
    await deleteFanOutMarkersBefore(this.ctx.db, new Date(this.ctx.now() - retention));
    const addPackages = await deleteExpiredAddPackages(this.ctx.db, new Date(this.ctx.now()));
    const auditRows = await deleteAdminAuditBefore(
      this.ctx.db,
      new Date(this.ctx.now() - this.config.ADMIN_AUDIT_RETENTION),
    );
    return { clients, messages, addPackages, auditRows };
  }

  /**
   * Closes the live listeners and the router it built, once the runner stopped the workers (the
   * bus and database stay open).
   */
  async close(): Promise<void> {
    this.pushes.close();
    await this.notifier.close?.();
    await this.ctx.listeners.close();
    if (this.ownsRouter) this.router.close();
  }
}

const MINUTE = 60_000;
const HOUR = 3600_000;

/** The per-replica limits of the unauthenticated RPCs (0 requests disables one). */
function rateLimitsOf(config: QueueConfig): QsRateLimits {
  return {
    fetchAddPackagesPerToken: new NamedRateLimit(
      "FetchAddPackages per friendship token",
      "QS_RATE_FETCH_ADD_PACKAGES_PER_TOKEN",
      config.QS_RATE_FETCH_ADD_PACKAGES_PER_TOKEN,
      MINUTE,
    ),
    fetchAddPackagesPerCaller: new NamedRateLimit(
      "FetchAddPackages per caller",
      "QS_RATE_FETCH_ADD_PACKAGES_PER_CALLER",
      config.QS_RATE_FETCH_ADD_PACKAGES_PER_CALLER,
      MINUTE,
    ),
    createUserPerCaller: new NamedRateLimit(
      "CreateUser per caller",
      "QS_RATE_CREATE_USER_PER_CALLER",
      config.QS_RATE_CREATE_USER_PER_CALLER,
      HOUR,
    ),
  };
}

/** An operator-provided key (64 hex characters, either case) as bytes. */
function hexKey(hex: string | undefined): Uint8Array | undefined {
  return hex ? fromHex(hex.toLowerCase()) : undefined;
}
