import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fromHex, randomBytes, toHex } from "@phoenix/crypto";
import { fileDescriptorSet } from "@phoenix/proto";
import type { Bus } from "@phoenix/runtime/bus";
import type { DatabaseHandle } from "@phoenix/runtime/db";
import type { FederationRouter } from "@phoenix/runtime/federation";
import { openServiceStorage, type ServiceRuntime, type ServiceSetup } from "@phoenix/runtime/lifecycle";
import type { QueueConfig } from "./config.js";
import { WebhookAddressPolicy } from "./domain/webhook-address.js";
import { LoggingNotifier, type PushNotifier, WebhookNotifier } from "./push/notifier.js";
import { type QsStreams, QueueService } from "./service.js";

/** The QS's drizzle-kit migrations. */
export const QUEUE_MIGRATIONS = fileURLToPath(new URL("../migrations", import.meta.url));

/** The storage key is neither configured nor derivable from DATA_DIR. */
export class StorageKeyError extends Error {
  override readonly name = "StorageKeyError";
}

/**
 * The 32-byte storage key: `QS_STORAGE_KEY`, else `$DATA_DIR/queue/storage.key` (created with
 * mode 0600 on first start — the embedded homeserver's default). Deployments set the variable
 * from a secret: a key that lives next to the database protects nothing against a disk copy.
 */
export async function loadStorageKey(
  config: Pick<QueueConfig, "QS_STORAGE_KEY" | "DATA_DIR">,
): Promise<Uint8Array> {
  if (config.QS_STORAGE_KEY) return fromHex(config.QS_STORAGE_KEY.toLowerCase());
  if (!config.DATA_DIR) {
    throw new StorageKeyError("set QS_STORAGE_KEY (64 hex characters) or DATA_DIR to keep a generated one");
  }
  const dir = join(config.DATA_DIR, "queue");
  const file = join(dir, "storage.key");
  try {
    const text = (await readFile(file, "utf8")).trim();
    if (!/^[0-9a-f]{64}$/.test(text)) throw new StorageKeyError(`${file} does not hold 64 hex characters`);
    return fromHex(text);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  // "wx": two processes starting at once cannot both create a key.
  await writeFile(file, `${toHex(key)}\n`, { mode: 0o600, flag: "wx" }).catch(
    async (error: NodeJS.ErrnoException) => {
      if (error.code !== "EEXIST") throw error;
    },
  );
  return fromHex((await readFile(file, "utf8")).trim());
}

/** Resources a caller (the all-in-one homeserver, tests) hands in instead of opening them. */
export interface QueueResources {
  database?: DatabaseHandle;
  bus?: Bus;
  notifier?: PushNotifier;
  /** Prefix of every bus subject (several homeservers on one NATS); default none. */
  subjectPrefix?: string;
  /** Stream names instead of the configured ones. */
  streams?: Partial<QsStreams>;
  /** Federation router shared with the embedder's other services (it closes it); default: from FEDERATION_PROXY_ADDRESS. */
  router?: FederationRouter;
}

/** Opens what the QS needs from its config, starts it and returns what runService serves. */
export async function setupQueue(
  runtime: ServiceRuntime<QueueConfig>,
  resources: QueueResources = {},
): Promise<ServiceSetup> {
  const { config, logger, onShutdown } = runtime;
  const storageKey = await loadStorageKey(config);
  const { database, bus } = await openServiceStorage(
    runtime,
    { name: "queue", migrationsFolder: QUEUE_MIGRATIONS },
    resources,
  );
  const notifier =
    resources.notifier ??
    (config.QS_PUSH_NOTIFIER === "webhook"
      ? new WebhookNotifier({
          allowHttp: config.QS_PUSH_WEBHOOK_ALLOW_HTTP,
          policy: new WebhookAddressPolicy(config.QS_PUSH_WEBHOOK_ALLOW),
          fallback: new LoggingNotifier(logger),
          logger,
        })
      : new LoggingNotifier(logger));
  const service = await QueueService.create({
    database,
    bus,
    domain: config.QS_DOMAIN,
    logger,
    storageKey,
    providedConfigKey: config.QS_QUEUE_CONFIG_PRIVATE_KEY
      ? fromHex(config.QS_QUEUE_CONFIG_PRIVATE_KEY.toLowerCase())
      : undefined,
    providedSigningKey: config.QS_SIGNING_KEY_SEED
      ? fromHex(config.QS_SIGNING_KEY_SEED.toLowerCase())
      : undefined,
    keyRotationIntervalMs: config.QS_KEY_ROTATION_INTERVAL,
    keyRetirementGraceMs: config.QS_KEY_RETIREMENT_GRACE,
    limits: {
      maxClientsPerUser: config.QS_MAX_CLIENTS_PER_USER,
      maxDequeue: config.QS_MAX_DEQUEUE,
      maxBlocklist: config.QS_MAX_BLOCKLIST,
      maxQueueDepth: config.QS_MAX_QUEUE_DEPTH,
    },
    messageExpiryMs: config.QS_MESSAGE_EXPIRY,
    ratchetPolicy: {
      everyMessages: config.QS_RATCHET_UPDATE_MESSAGES,
      everyMs: config.QS_RATCHET_UPDATE_INTERVAL,
    },
    clientInactivityMs: config.QS_CLIENT_INACTIVITY,
    authKeyGraceMs: config.QS_AUTH_KEY_GRACE,
    idleKeyUpdateIntervalMs: config.QS_IDLE_KEY_UPDATE_CHECK_INTERVAL,
    rateLimits: {
      fetchAddPackagesPerToken: { requests: config.QS_RATE_FETCH_ADD_PACKAGES_PER_TOKEN, periodMs: 60_000 },
      fetchAddPackagesPerCaller: { requests: config.QS_RATE_FETCH_ADD_PACKAGES_PER_CALLER, periodMs: 60_000 },
      createUserPerCaller: { requests: config.QS_RATE_CREATE_USER_PER_CALLER, periodMs: 3600_000 },
    },
    trustedProxies: config.QS_TRUSTED_PROXIES,
    fanOutDurable: config.QS_FANOUT_DURABLE,
    streams: {
      fanOut: config.QS_FANOUT_STREAM,
      queueDeleted: config.QS_QUEUE_DELETED_STREAM,
      federation: config.QS_FEDERATION_STREAM,
      ...resources.streams,
    },
    subjectPrefix: resources.subjectPrefix ?? config.QS_SUBJECT_PREFIX,
    fanOutMaxInFlight: config.QS_FANOUT_MAX_IN_FLIGHT,
    notifier,
    pushWebhookAllow: config.QS_PUSH_WEBHOOK_ALLOW,
    metricsRegistry: runtime.metrics.registry,
    federationProxyAddress: config.FEDERATION_PROXY_ADDRESS,
    maxMessageBytes: config.GRPC_MAX_MESSAGE_BYTES,
    ...(resources.router ? { router: resources.router } : {}),
  });
  onShutdown(service, "queue service");
  await service.start();
  logger.info({ domain: config.QS_DOMAIN }, "queue service ready");
  return { services: [service.registration], reflection: { descriptorSet: fileDescriptorSet() } };
}
