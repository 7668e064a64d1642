import { fileDescriptorSet } from "@phoenix/proto";
import { registerOutboxMetrics } from "@phoenix/runtime/metrics";
import { defineServiceModule, parseOperatorKeys } from "@phoenix/runtime/module";
import { queueAdminRoutes } from "./admin/queue-admin.js";
import { queueConfigSchema } from "./config.js";
import type { PushNotifier } from "./push/notifier.js";
import { QueueService, type QueueServiceHooks } from "./service.js";
import { loadStorageKey, pushNotifier, QUEUE_MIGRATIONS } from "./setup.js";

/** What no config variable sets: a handed-in push notifier and the QS's timers and test hooks. */
export interface QueueModuleExtras {
  /** Used instead of the one QS_PUSH_NOTIFIER names. */
  notifier?: PushNotifier;
  hooks?: QueueServiceHooks;
}

/**
 * The Queuing Service as a service module with `extras`: tests use it to inject a clock, a
 * notifier or a crash hook; deployments run {@link queueModule}.
 */
export function queueModuleWith(extras: QueueModuleExtras) {
  return defineServiceModule({
    name: "queue",
    config: queueConfigSchema,
    grpc: true,
    storage: { migrationsFolder: QUEUE_MIGRATIONS },
    // Embedded, every QS caller is in this process: the edge gateway, whose `x-forwarded-for`
    // names the real client, and the federation gateway, both on loopback.
    // A namespaced embedder's bus names replace the QS_* stream and prefix variables.
    embed: ({ domain, bus }) => ({
      QS_DOMAIN: domain,
      QS_TRUSTED_PROXIES: ["127.0.0.1", "::1"],
      QS_SUBJECT_PREFIX: bus?.subjectPrefix,
      QS_FANOUT_STREAM: bus?.streams.fanOut,
      QS_QUEUE_DELETED_STREAM: bus?.streams.queueDeleted,
      QS_FEDERATION_STREAM: bus?.streams.federation,
    }),
    async create({ config, logger, metrics, onShutdown, database, bus, router }) {
      // Queue-deleted reports and federation envelopes wait in the outbox until relayed.
      registerOutboxMetrics(metrics.registry, database.db);
      // Keys wrapped under QS_STORAGE_KEY, else under `$DATA_DIR/queue/storage.key`.
      const storageKey = await loadStorageKey(config);
      const service = await QueueService.create({
        config,
        database,
        bus,
        logger,
        storageKey,
        notifier: extras.notifier ?? (await pushNotifier(config, logger)),
        metricsRegistry: metrics.registry,
        ...(router ? { router } : {}),
        ...(extras.hooks ? { hooks: extras.hooks } : {}),
      });
      onShutdown(service, "queue service");
      logger.info({ domain: config.QS_DOMAIN }, "queue service ready");
      return {
        service,
        services: [service.registration],
        // Never on the public listener: the runner serves it on ADMIN_GRPC_HOST:ADMIN_GRPC_PORT.
        admin: {
          services: [
            queueAdminRoutes({
              ctx: service.ctx,
              operatorKeys: parseOperatorKeys(config.ADMIN_OPERATOR_KEYS),
              messageExpiryMs: config.QS_MESSAGE_EXPIRY,
            }),
          ],
        },
        workers: service.workers,
        reflection: { descriptorSet: fileDescriptorSet() },
      };
    },
  });
}

/**
 * The Queuing Service: queues, fan-out consumer, push, AddPackages. Its config is
 * `queueConfigSchema`; embedded, `embed` sets its domain and trusts the in-process gateways.
 */
export const queueModule = queueModuleWith({});
