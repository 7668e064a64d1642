import { fileDescriptorSet } from "@phoenix/proto";
import { registerOutboxMetrics } from "@phoenix/runtime/metrics";
import { defineServiceModule } from "@phoenix/runtime/module";
import { deliveryConfigSchema } from "./config.js";
import { translateDeliveryError } from "./domain/errors.js";
import { DeliveryService } from "./service.js";
import { DELIVERY_MIGRATIONS } from "./store/migrations.js";

/** What no config variable sets: the DS's clock. */
export interface DeliveryModuleExtras {
  /** Clock in ms since the epoch (default Date.now); tests move it to trigger inactivity. */
  now?: () => number;
}

/**
 * The Delivery Service as a service module with `extras`: tests use it to inject a clock;
 * deployments run {@link deliveryModule}.
 */
export function deliveryModuleWith(extras: DeliveryModuleExtras) {
  return defineServiceModule({
    name: "delivery",
    config: deliveryConfigSchema,
    grpc: true,
    storage: { migrationsFolder: DELIVERY_MIGRATIONS },
    // Embedded, every DS caller is in this process: the edge gateway, whose `x-forwarded-for`
    // names the real caller of RequestGroupId, and the federation gateway, both on loopback.
    // DS_REPLAY_MARKER_KEY stays the embedder's to give (a secret, not a setting).
    // A namespaced embedder's bus names replace the DS's subject and stream variables.
    embed: ({ domain, bus }) => ({
      DS_DOMAIN: domain,
      DS_TRUSTED_PROXIES: ["127.0.0.1", "::1"],
      DS_FANOUT_SUBJECT: bus?.subjects.fanOut,
      DS_FANOUT_STREAM: bus?.streams.fanOut,
      DS_QUEUE_DELETED_SUBJECT: bus?.subjects.queueDeleted,
      DS_QUEUE_DELETED_STREAM: bus?.streams.queueDeleted,
    }),
    async create({ config, logger, metrics, onShutdown, database, bus, router }) {
      // Fan-outs and queue-deleted reports wait in the outbox until the relay published them.
      registerOutboxMetrics(metrics.registry, database.db);
      const service = await DeliveryService.create({
        config,
        database,
        bus,
        logger,
        ...(extras.now ? { now: extras.now } : {}),
        ...(router ? { router } : {}),
      });
      // Registered after the runner's database and bus: the DS closes before they do.
      onShutdown(service, "delivery service");
      logger.info({ domain: config.DS_DOMAIN }, "delivery service ready");
      return {
        service,
        services: [service.registration],
        workers: service.workers,
        reflection: { descriptorSet: fileDescriptorSet() },
        translateError: translateDeliveryError,
      };
    },
  });
}

/**
 * The Delivery Service: groups, signed group requests, fan-outs through the outbox, queue-deleted
 * reports, the sweeper. Its config is `deliveryConfigSchema`; embedded, `embed` sets its domain
 * and trusts the in-process gateways.
 */
export const deliveryModule = deliveryModuleWith({});
