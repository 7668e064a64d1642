// Entry points of the old shape, over `queueModule`: kept only until services/homeserver
// (setupQueue) and libs/test-harness (startQueueServer) embed the module through startModules.
import { toHex } from "@phoenix/crypto";
import type { Bus } from "@phoenix/runtime/bus";
import { LOG_LEVELS, type LogLevel } from "@phoenix/runtime/config";
import type { DatabaseHandle } from "@phoenix/runtime/db";
import type { FederationRouter } from "@phoenix/runtime/federation";
import type { ServiceRuntime, ServiceSetup } from "@phoenix/runtime/lifecycle";
import type { Logger } from "@phoenix/runtime/log";
import { runModule } from "@phoenix/runtime/module";
import type { QueueConfig } from "./config.js";
import { queueModule, queueModuleWith } from "./module.js";
import type { QsStreams, QueueService, QueueServiceHooks } from "./service.js";

/** Resources the all-in-one homeserver hands {@link setupQueue} instead of opening them. */
export interface QueueResources {
  database?: DatabaseHandle;
  bus?: Bus;
  /** Prefix of every bus subject (several homeservers on one NATS) instead of QS_SUBJECT_PREFIX. */
  subjectPrefix?: string;
  /** Stream names instead of the configured ones. */
  streams?: Partial<QsStreams>;
  /** Federation router shared with the embedder's other services (it closes it); default: from FEDERATION_PROXY_ADDRESS. */
  router?: FederationRouter;
}

/** `queueModule.create` on a runtime of `runService` (the homeserver's QS until it uses startModules). */
export async function setupQueue(
  runtime: ServiceRuntime<QueueConfig>,
  resources: QueueResources = {},
): Promise<ServiceSetup> {
  const { database, bus, router, subjectPrefix, streams } = resources;
  if (database === undefined || bus === undefined) {
    throw new TypeError("setupQueue needs a database and a bus (processes run queueModule)");
  }
  const config: QueueConfig = {
    ...runtime.config,
    ...(subjectPrefix !== undefined ? { QS_SUBJECT_PREFIX: subjectPrefix } : {}),
    ...(streams?.fanOut !== undefined ? { QS_FANOUT_STREAM: streams.fanOut } : {}),
    ...(streams?.queueDeleted !== undefined ? { QS_QUEUE_DELETED_STREAM: streams.queueDeleted } : {}),
    ...(streams?.federation !== undefined ? { QS_FEDERATION_STREAM: streams.federation } : {}),
  };
  return queueModule.create({ ...runtime, config, database, bus, ...(router ? { router } : {}) });
}

/** What the test harness starts a QS with (see {@link startQueueServer}). */
export interface QueueServerOptions extends QueueServiceHooks {
  database: DatabaseHandle;
  bus: Bus;
  domain: string;
  /** Its level is the QS's LOG_LEVEL. */
  logger: Logger;
  storageKey: Uint8Array;
  streams?: Partial<QsStreams>;
  subjectPrefix?: string;
  fanOutDurable?: string;
  grpc?: { GRPC_PORT?: number };
}

/** A QS served over gRPC on loopback. */
export interface QueueServer {
  service: QueueService;
  port: number;
  /** Shuts the gRPC server down, then stops the service. */
  stop(): Promise<void>;
}

/**
 * Runs `queueModule` in this process on `database` and `bus` (port 0 picks a free port). As
 * before, the rate limits are off: the harness's clients all call from 127.0.0.1.
 */
export async function startQueueServer(options: QueueServerOptions): Promise<QueueServer> {
  const { database, bus, domain, logger, storageKey, streams, subjectPrefix, fanOutDurable, grpc, ...hooks } =
    options;
  const level = LOG_LEVELS.find((name): name is LogLevel => name === logger.level) ?? "info";
  const running = await runModule(queueModuleWith({ hooks }), {
    env: {},
    signals: false,
    exit: false,
    resources: { database, bus },
    overrides: {
      QS_DOMAIN: domain,
      QS_STORAGE_KEY: toHex(storageKey),
      QS_SUBJECT_PREFIX: subjectPrefix,
      QS_FANOUT_STREAM: streams?.fanOut,
      QS_QUEUE_DELETED_STREAM: streams?.queueDeleted,
      QS_FEDERATION_STREAM: streams?.federation,
      QS_FANOUT_DURABLE: fanOutDurable,
      QS_RATE_FETCH_ADD_PACKAGES_PER_TOKEN: 0,
      QS_RATE_FETCH_ADD_PACKAGES_PER_CALLER: 0,
      QS_RATE_CREATE_USER_PER_CALLER: 0,
      LOG_LEVEL: level,
      GRPC_HOST: "127.0.0.1",
      GRPC_PORT: grpc?.GRPC_PORT ?? 0,
      METRICS_PORT: 0,
      SHUTDOWN_GRACE_MS: 2000,
    },
  });
  const port = running.grpcPort;
  if (port === undefined) throw new Error("the queue module serves gRPC");
  return {
    service: running.instance.service,
    port,
    async stop() {
      const code = await running.process.shutdown("stop");
      if (code !== 0) throw new Error(`the queue service shut down with code ${code}`);
    },
  };
}
