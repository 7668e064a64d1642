// One homeserver (AS, DS, QS) in this process on 127.0.0.1, wired as in a deployment: each
// service on its own fresh Postgres database, the DS's fan-out outbox relayed over NATS JetStream
// to the QS's durable consumer, queue-deleted reports flowing back the same way. The services are
// their modules, started by the runtime's `startModules` like the all-in-one homeserver.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { authModule } from "@phoenix/auth";
import { deliveryModule } from "@phoenix/delivery";
import { queueModuleWith } from "@phoenix/queue";
import { busTopology, connectNatsBus } from "@phoenix/runtime/bus";
import type { LogLevel } from "@phoenix/runtime/config";
import {
  type AnyServiceModule,
  type ModuleEntry,
  type RunningModules,
  type StartModulesOptions,
  startModules,
  withOverrides,
} from "@phoenix/runtime/module";
import { createTestDatabase, type TestDatabase } from "@phoenix/runtime/testing";
import { deleteStreams } from "./storage.js";

export type { LogLevel };

/** Options of {@link startHomeserver}. */
export interface HomeserverOptions {
  /** The homeserver's domain (default `alpha.example`). */
  domain?: string;
  /** NATS server (default `NATS_URL`, set by the vitest global setup). */
  natsUrl?: string;
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

/** Per-caller limits raised out of the way: every test client calls from 127.0.0.1. */
const UNLIMITED = 1_000_000;

/** The QS's timers for tests: a quick outbox relay, no background sweeps or key refreshes. */
const testQueueModule = queueModuleWith({
  hooks: { relayPollIntervalMs: 50, sweepIntervalMs: 0, keyRefreshIntervalMs: 0 },
});

/** Starts AS, QS and DS for `domain` on fresh databases and unique NATS streams. */
export async function startHomeserver(options: HomeserverOptions = {}): Promise<Homeserver> {
  const domain = options.domain ?? "alpha.example";
  const natsUrl = options.natsUrl ?? process.env.NATS_URL;
  if (!natsUrl) throw new HarnessSetupError("NATS_URL is not set: run tests through vitest");
  if (!process.env.DATABASE_URL)
    throw new HarnessSetupError("DATABASE_URL is not set: run tests through vitest");
  const suffix = randomBytes(6).toString("hex");
  // A bus namespace of its own (subject prefix, stream names) keeps parallel homeservers on one
  // NATS apart; every module maps the same topology onto its own variables.
  const bus = busTopology(`h${suffix}`);
  const cleanups: (() => Promise<void>)[] = [];
  const stop = async (): Promise<void> => {
    const errors: unknown[] = [];
    for (const cleanup of cleanups.reverse()) await cleanup().catch((e: unknown) => errors.push(e));
    cleanups.length = 0;
    if (errors.length > 0) throw new AggregateError(errors, "homeserver stop failed");
  };
  try {
    cleanups.push(() => deleteStreams(natsUrl, Object.values(bus.streams)));
    const natsBus = await connectNatsBus({ servers: natsUrl, name: `homeserver-${suffix}` });
    cleanups.push(() => natsBus.close());
    // Nothing is written here (every key is given), but the modules' DATA_DIR must be a place of its own.
    const dataDir = await mkdtemp(join(tmpdir(), "phoenix-harness-"));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));

    const modules = [authModule, testQueueModule, deliveryModule] as const;
    const databases = new Map<string, TestDatabase>();
    for (const module of modules) {
      const db = await createTestDatabase({ migrationsFolder: module.storage?.migrationsFolder });
      cleanups.push(() => db.close());
      databases.set(module.name, db);
    }
    const startOptions: StartModulesOptions = {
      env: {},
      settings: { domain, dataDir, logLevel: options.logLevel ?? "silent", shutdownGraceMs: 2000, bus },
      resources: (name) => ({ database: databases.get(name), bus: natsBus }),
    };
    const queueStorageKey = randomBytes(32).toString("hex");
    const queueEntry = (grpcPort: number) =>
      withOverrides(testQueueModule, {
        // Kept for restarts: the storage key opens the QS's wrapped keys and ratchet states.
        QS_STORAGE_KEY: queueStorageKey,
        QS_RATE_FETCH_ADD_PACKAGES_PER_TOKEN: 0,
        QS_RATE_FETCH_ADD_PACKAGES_PER_CALLER: 0,
        QS_RATE_CREATE_USER_PER_CALLER: 0,
        GRPC_PORT: grpcPort,
      });
    const entries: (AnyServiceModule | ModuleEntry)[] = [
      withOverrides(authModule, {
        AS_KEY_ENCRYPTION_KEY: randomBytes(32).toString("hex"),
        AS_CALLER_RATE_CHECK_HANDLE_PER_MINUTE: UNLIMITED,
        AS_CALLER_RATE_PACKAGES_PER_MINUTE: UNLIMITED,
        AS_TARGET_RATE_PACKAGES_PER_HOUR: UNLIMITED,
        AS_CALLER_RATE_PROFILE_PER_MINUTE: UNLIMITED,
        AS_CALLER_RATE_ENQUEUE_PER_MINUTE: UNLIMITED,
        AS_SOURCE_RATE_REGISTER_PER_HOUR: UNLIMITED,
        AS_ENQUEUE_RATE_PER_MINUTE: UNLIMITED,
      }),
      queueEntry(0),
      withOverrides(deliveryModule, {
        DS_REPLAY_MARKER_KEY: randomBytes(32).toString("hex"),
        DS_RELAY_POLL_INTERVAL: 50,
        DS_SWEEP_INTERVAL: 0,
        DS_CALLER_RATE_GROUP_ID_PER_MINUTE: UNLIMITED,
      }),
    ];
    const running = await startModules(entries, startOptions);
    // A restarted QS runs apart from the first start's modules; it stops before them.
    let restarted: RunningModules | undefined;
    cleanups.push(async () => {
      await restarted?.stop();
      await running.stop();
    });
    const address = (name: string): string => {
      const found = running.addresses[name];
      if (found === undefined) throw new HarnessSetupError(`the ${name} module published no address`);
      return found;
    };
    const queue = running.modules[testQueueModule.name];
    const queuePort = queue?.grpcPort;
    if (queue === undefined || queuePort === undefined) throw new HarnessSetupError("the QS serves no gRPC");
    const databaseUrl = (name: string) => url(databases.get(name));

    return {
      domain,
      streams: { ...bus.streams },
      databaseUrls: {
        auth: databaseUrl(authModule.name),
        delivery: databaseUrl(deliveryModule.name),
        queue: databaseUrl(testQueueModule.name),
      },
      addresses: {
        auth: address(authModule.name),
        delivery: address(deliveryModule.name),
        queue: address(testQueueModule.name),
      },
      async restartQueue() {
        if (restarted === undefined) {
          const code = await queue.process.shutdown("restart");
          if (code !== 0) throw new Error(`the queue service shut down with code ${code}`);
        } else {
          await restarted.stop();
        }
        restarted = undefined;
        restarted = await startModules([queueEntry(queuePort)], {
          ...startOptions,
          settings: { ...startOptions.settings, addresses: running.addresses },
        });
      },
      stop,
    };
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
}

function url(db: TestDatabase | undefined): string {
  if (db?.url === undefined) throw new HarnessSetupError("a test database without a URL");
  return db.url;
}
