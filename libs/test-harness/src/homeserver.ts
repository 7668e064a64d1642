// One homeserver (AS, DS, QS) in this process on 127.0.0.1, wired as in a deployment: each
// service on its own fresh Postgres database, the DS's fan-out outbox relayed over NATS JetStream
// to the QS's durable consumer, queue-deleted reports flowing back the same way.
import { randomBytes } from "node:crypto";
import { type AuthService, authConfigSchema, authMigrationsFolder, createAuthService } from "@phoenix/auth";
import { DELIVERY_MIGRATIONS, type RunningDelivery, startDelivery } from "@phoenix/delivery";
import { QUEUE_MIGRATIONS, type QueueServer, startQueueServer } from "@phoenix/queue";
import { type Bus, busTopology, connectNatsBus } from "@phoenix/runtime/bus";
import type { Env } from "@phoenix/runtime/config";
import { runService } from "@phoenix/runtime/lifecycle";
import { createLogger } from "@phoenix/runtime/log";

/** A pino level name. */
export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

import { createTestDatabase, type TestDatabase } from "@phoenix/runtime/testing";
import { deleteStreams } from "./storage.js";

/** Options of {@link startHomeserver}. */
export interface HomeserverOptions {
  /** The homeserver's domain (default `alpha.example`). */
  domain?: string;
  /** NATS server (default `NATS_URL`, set by the vitest global setup). */
  natsUrl?: string;
  /** Extra AS environment variables (e.g. `AS_REGISTRATION`). */
  authEnv?: Env;
  /** Extra DS environment variables. */
  deliveryEnv?: Env;
  /** Log level of all three services (default `silent`). */
  logLevel?: LogLevel;
}

/** gRPC addresses (`127.0.0.1:port`) of a homeserver's services. */
export interface HomeserverAddresses {
  auth: string;
  delivery: string;
  queue: string;
}

/** A running homeserver; `stop()` shuts everything down and drops its databases and streams. */
export interface Homeserver {
  readonly domain: string;
  readonly addresses: HomeserverAddresses;
  /** The bus stream names of this homeserver (unique per instance). */
  readonly streams: { fanOut: string; queueDeleted: string; federation: string };
  /** Postgres URLs of the services' databases (what a snapshot adversary would copy). */
  readonly databaseUrls: HomeserverAddresses;
  /** Stops the QS and starts it again on the same port, database and keys (outage tests). */
  restartQueue(): Promise<void>;
  stop(): Promise<void>;
}

/** Thrown when the harness lacks its infrastructure (no `DATABASE_URL` / `NATS_URL`). */
export class HarnessSetupError extends Error {
  override readonly name = "HarnessSetupError";
}

/**
 * AS environment for tests: every client calls from 127.0.0.1, so the per-caller rate limits are
 * raised out of the way; callers may override any of it.
 */
const TEST_AUTH_ENV: Env = {
  AS_CALLER_RATE_CHECK_HANDLE_PER_MINUTE: "1000000",
  AS_CALLER_RATE_PACKAGES_PER_MINUTE: "1000000",
  AS_TARGET_RATE_PACKAGES_PER_HOUR: "1000000",
  AS_CALLER_RATE_PROFILE_PER_MINUTE: "1000000",
  AS_CALLER_RATE_ENQUEUE_PER_MINUTE: "1000000",
  AS_SOURCE_RATE_REGISTER_PER_HOUR: "1000000",
  AS_ENQUEUE_RATE_PER_MINUTE: "1000000",
};

/** Starts AS, DS and QS for `domain` on fresh databases and unique NATS streams. */
export async function startHomeserver(options: HomeserverOptions = {}): Promise<Homeserver> {
  const domain = options.domain ?? "alpha.example";
  const natsUrl = options.natsUrl ?? process.env.NATS_URL;
  if (!natsUrl) throw new HarnessSetupError("NATS_URL is not set: run tests through vitest");
  const level = options.logLevel ?? "silent";
  const suffix = randomBytes(6).toString("hex");
  // A bus namespace of its own (subject prefix, stream names) keeps parallel homeservers on one
  // NATS apart; the DS and QS name the same streams, exactly as their deployment defaults do.
  const topology = busTopology(`h${suffix}`);
  const { subjectPrefix: prefix, streams } = topology;
  const cleanups: (() => Promise<void>)[] = [];
  const stop = async (): Promise<void> => {
    const errors: unknown[] = [];
    for (const cleanup of cleanups.reverse()) await cleanup().catch((e: unknown) => errors.push(e));
    cleanups.length = 0;
    if (errors.length > 0) throw new AggregateError(errors, "homeserver stop failed");
  };
  try {
    cleanups.push(() => deleteStreams(natsUrl, Object.values(streams)));
    const bus = await connectNatsBus({ servers: natsUrl, name: `homeserver-${suffix}` });
    cleanups.push(() => bus.close());

    const authDb = await database(cleanups, authMigrationsFolder);
    const deliveryDb = await database(cleanups, DELIVERY_MIGRATIONS);
    const queueDb = await database(cleanups, QUEUE_MIGRATIONS);

    const auth = await startAuth(authDb, bus, domain, level, { ...TEST_AUTH_ENV, ...options.authEnv });
    cleanups.push(auth.stop);

    const queueOptions = {
      database: queueDb,
      bus,
      domain,
      logger: createLogger({ service: "queue-service", level }),
      // Kept for restarts: the storage key opens the QS's wrapped keys and ratchet states.
      storageKey: new Uint8Array(randomBytes(32)),
      streams,
      subjectPrefix: prefix,
      relayPollIntervalMs: 50,
      sweepIntervalMs: 0,
      keyRefreshIntervalMs: 0,
      fanOutDurable: `qs-${suffix}`,
    };
    let queue: QueueServer | undefined = await startQueueServer(queueOptions);
    const queuePort = queue.port;
    cleanups.push(async () => {
      await queue?.stop();
      queue = undefined;
    });

    const delivery: RunningDelivery = await startDelivery({
      env: {
        DS_DOMAIN: domain,
        DS_REPLAY_MARKER_KEY: randomBytes(32).toString("hex"),
        LOG_LEVEL: level,
        GRPC_PORT: "0",
        METRICS_PORT: "0",
        SHUTDOWN_GRACE_MS: "2s",
        DS_FANOUT_SUBJECT: topology.subjects.fanOut,
        DS_FANOUT_STREAM: streams.fanOut,
        DS_QUEUE_DELETED_SUBJECT: topology.subjects.queueDeleted,
        DS_QUEUE_DELETED_STREAM: streams.queueDeleted,
        DS_RELAY_POLL_INTERVAL: "50ms",
        DS_SWEEP_INTERVAL: "0",
        DS_CALLER_RATE_GROUP_ID_PER_MINUTE: "1000000",
        ...options.deliveryEnv,
      },
      database: deliveryDb,
      bus,
    });
    cleanups.push(() => delivery.stop());

    return {
      domain,
      streams,
      databaseUrls: { auth: url(authDb), delivery: url(deliveryDb), queue: url(queueDb) },
      addresses: {
        auth: `127.0.0.1:${auth.port}`,
        delivery: `127.0.0.1:${delivery.port}`,
        queue: `127.0.0.1:${queuePort}`,
      },
      async restartQueue() {
        await queue?.stop();
        queue = undefined;
        queue = await startQueueServer({ ...queueOptions, grpc: { GRPC_PORT: queuePort } });
      },
      stop,
    };
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
}

function url(db: TestDatabase): string {
  if (db.url === undefined) throw new HarnessSetupError("a test database without a URL");
  return db.url;
}

async function database(cleanups: (() => Promise<void>)[], migrationsFolder: string): Promise<TestDatabase> {
  if (!process.env.DATABASE_URL)
    throw new HarnessSetupError("DATABASE_URL is not set: run tests through vitest");
  const db = await createTestDatabase({ migrationsFolder });
  cleanups.push(() => db.close());
  return db;
}

async function startAuth(
  db: TestDatabase,
  bus: Bus,
  domain: string,
  level: LogLevel,
  env: Env,
): Promise<{ port: number; stop: () => Promise<void> }> {
  let service: AuthService | undefined;
  const running = await runService({
    config: authConfigSchema,
    env: {
      AS_DOMAIN: domain,
      AS_KEY_ENCRYPTION_KEY: randomBytes(32).toString("hex"),
      GRPC_PORT: "0",
      METRICS_PORT: "0",
      LOG_LEVEL: level,
      ...env,
    },
    signals: false,
    exit: false,
    async setup({ config, logger }) {
      service = await createAuthService({ db: db.db, bus, config, log: logger });
      return { services: [service.registration] };
    },
  });
  return {
    port: running.grpcPort,
    async stop() {
      await running.shutdown("homeserver stop");
      await service?.close();
    },
  };
}
