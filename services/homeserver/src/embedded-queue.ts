import { fromHex } from "@phoenix/crypto";
import { fileDescriptorSet } from "@phoenix/proto";
import {
  LoggingNotifier,
  loadStorageKey,
  type QueueConfig,
  QueueService,
  WebhookNotifier,
} from "@phoenix/queue";
import type { Bus } from "@phoenix/runtime/bus";
import type { DatabaseHandle } from "@phoenix/runtime/db";
import type { ServiceRuntime, ServiceSetup } from "@phoenix/runtime/lifecycle";

/** Bus subjects and stream names of one homeserver, and the service variables that set them. */
export interface BusNames {
  /** `""` (the deployment defaults) or `<namespace>.`. */
  subjectPrefix: string;
  streams: { fanOut: string; queueDeleted: string; federation: string };
  queueEnv: Record<string, string>;
  deliveryEnv: Record<string, string>;
  federationEnv: Record<string, string>;
}

/**
 * The names of a homeserver's bus traffic. Without a namespace: the deployment defaults, and the
 * services' own variables (`DS_FANOUT_STREAM`, …) still apply. With one: every subject starts
 * with `<namespace>.` and every stream name ends in `_<namespace>`, so several homeservers (or
 * test runs) share one NATS without seeing each other's messages.
 */
export function busNames(namespace: string | undefined): BusNames {
  if (namespace === undefined) {
    return {
      subjectPrefix: "",
      streams: {
        fanOut: "PHOENIX_FANOUT",
        queueDeleted: "PHOENIX_QUEUE_DELETED",
        federation: "PHOENIX_FEDERATION_OUTBOUND",
      },
      queueEnv: {},
      deliveryEnv: {},
      federationEnv: {},
    };
  }
  const prefix = `${namespace}.`;
  const streams = {
    fanOut: `PHOENIX_FANOUT_${namespace}`,
    queueDeleted: `PHOENIX_QUEUE_DELETED_${namespace}`,
    federation: `PHOENIX_FEDERATION_OUTBOUND_${namespace}`,
  };
  return {
    subjectPrefix: prefix,
    streams,
    queueEnv: {
      QS_FANOUT_STREAM: streams.fanOut,
      QS_QUEUE_DELETED_STREAM: streams.queueDeleted,
      QS_FEDERATION_STREAM: streams.federation,
    },
    deliveryEnv: {
      DS_FANOUT_SUBJECT: `${prefix}phoenix.fanout`,
      DS_FANOUT_STREAM: streams.fanOut,
      DS_QUEUE_DELETED_SUBJECT: `${prefix}phoenix.queue_deleted`,
      DS_QUEUE_DELETED_STREAM: streams.queueDeleted,
    },
    federationEnv: {
      FEDERATION_SUBJECT_PREFIX: prefix,
      FEDERATION_FANOUT_STREAM: streams.fanOut,
      FEDERATION_QUEUE_DELETED_STREAM: streams.queueDeleted,
      FEDERATION_OUTBOUND_STREAM: streams.federation,
    },
  };
}

/**
 * The QS with a subject prefix. `setupQueue` (used without a namespace) has no variable for the
 * prefix, so this mirrors its wiring with `subjectPrefix` added; drop it once the QS reads a
 * prefix from its config.
 */
export async function setupNamespacedQueue(
  runtime: ServiceRuntime<QueueConfig>,
  resources: { database: DatabaseHandle; bus: Bus; names: BusNames },
): Promise<ServiceSetup> {
  const { config, logger, onShutdown } = runtime;
  const hex = (value: string | undefined) => (value ? fromHex(value.toLowerCase()) : undefined);
  const service = await QueueService.create({
    database: resources.database,
    bus: resources.bus,
    domain: config.QS_DOMAIN,
    logger,
    storageKey: await loadStorageKey(config),
    providedConfigKey: hex(config.QS_QUEUE_CONFIG_PRIVATE_KEY),
    providedSigningKey: hex(config.QS_SIGNING_KEY_SEED),
    keyRotationIntervalMs: config.QS_KEY_ROTATION_INTERVAL,
    keyRetirementGraceMs: config.QS_KEY_RETIREMENT_GRACE,
    limits: {
      maxClientsPerUser: config.QS_MAX_CLIENTS_PER_USER,
      maxDequeue: config.QS_MAX_DEQUEUE,
      maxBlocklist: config.QS_MAX_BLOCKLIST,
    },
    ratchetPolicy: {
      everyMessages: config.QS_RATCHET_UPDATE_MESSAGES,
      everyMs: config.QS_RATCHET_UPDATE_INTERVAL,
    },
    clientInactivityMs: config.QS_CLIENT_INACTIVITY,
    fanOutDurable: config.QS_FANOUT_DURABLE,
    streams: resources.names.streams,
    subjectPrefix: resources.names.subjectPrefix,
    fanOutMaxInFlight: config.QS_FANOUT_MAX_IN_FLIGHT,
    notifier:
      config.QS_PUSH_NOTIFIER === "webhook"
        ? new WebhookNotifier({
            allowHttp: config.QS_PUSH_WEBHOOK_ALLOW_HTTP,
            fallback: new LoggingNotifier(logger),
          })
        : new LoggingNotifier(logger),
    metricsRegistry: runtime.metrics.registry,
  });
  onShutdown(service, "queue service");
  await service.start();
  logger.info(
    { domain: config.QS_DOMAIN, subjectPrefix: resources.names.subjectPrefix },
    "queue service ready",
  );
  return { services: [service.registration], reflection: { descriptorSet: fileDescriptorSet() } };
}
