// Test harness: a QS on a fresh Postgres database and NATS JetStream (unique subject prefix and
// stream names), reached through the generated gRPC definitions on 127.0.0.1, as a client would.
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import type { Client, Metadata } from "@grpc/grpc-js";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { toHex } from "@phoenix/crypto";
import { queue } from "@phoenix/proto";
import { type Bus, connectNatsBus } from "@phoenix/runtime/bus";
import { createChannel, createServiceClient, type ServiceClient } from "@phoenix/runtime/grpc";
import { runModule } from "@phoenix/runtime/module";
import { createTestDatabase, type TestDatabase } from "@phoenix/runtime/testing";
import type { QueueConfig } from "../../src/config.js";
import { queueModuleWith } from "../../src/module.js";
import type { PushNotifier } from "../../src/push/notifier.js";
import type { QueueService, QueueServiceHooks } from "../../src/service.js";
import { TestClient } from "./test-client.js";

export const DOMAIN = "alpha.example";
export const MIGRATIONS = fileURLToPath(new URL("../../migrations", import.meta.url));

/** The NATS server of the test infrastructure. */
export function natsUrl(): string {
  const url = process.env.NATS_URL;
  if (!url) throw new Error("NATS_URL is not set: run tests through vitest (its global setup sets it)");
  return url;
}

export type QsClient = ServiceClient<typeof queue.QueueServiceService>;

/** What a test changes of the QS under test. */
export interface HarnessOptions {
  /** Config values on top of the harness's own (see {@link Harness.config}). */
  config?: Partial<QueueConfig>;
  /** The QS's clock (ms since the epoch). */
  now?: () => number;
  notifier?: PushNotifier;
}

/** What one QS instance started by the harness is given on top of the harness's options. */
export interface InstanceOptions {
  /** Its own bus connection instead of the harness's. */
  bus?: Bus;
  hooks?: QueueServiceHooks;
}

/** A QS instance running in this process (the module through the runtime's runner). */
export interface QueueInstance {
  readonly service: QueueService;
  readonly port: number;
  /** Graceful shutdown; rejects on a non-zero code. */
  stop(): Promise<void>;
}

/** One QS under test with its database, bus and a gRPC client. */
export class Harness {
  readonly suffix = randomBytes(6).toString("hex");
  readonly prefix = `t${this.suffix}.`;
  readonly storageKey = new Uint8Array(randomBytes(32));
  db!: TestDatabase;
  bus!: Bus;
  server!: QueueInstance;
  client!: QsClient;
  private channel: Client | undefined;
  private options: HarnessOptions = {};

  get streams() {
    return {
      fanOut: `QS_FANOUT_${this.suffix}`,
      queueDeleted: `QS_QDEL_${this.suffix}`,
      federation: `QS_FED_${this.suffix}`,
    };
  }

  /** The running instance's service (sweeps, key refreshes). */
  get service(): QueueService {
    return this.server.service;
  }

  static async start(options: HarnessOptions = {}): Promise<Harness> {
    const h = new Harness();
    h.options = options;
    h.db = await createTestDatabase({ migrationsFolder: MIGRATIONS });
    h.bus = await connectNatsBus({ servers: natsUrl(), name: "qs-test" });
    await h.startService();
    return h;
  }

  /**
   * The QS's config values: its own streams, subject prefix and durable; per-caller limits off
   * (every test client calls from 127.0.0.1); no idle-queue timer; then the test's.
   */
  config(): Partial<QueueConfig> {
    return {
      QS_DOMAIN: DOMAIN,
      QS_STORAGE_KEY: toHex(this.storageKey),
      QS_FANOUT_STREAM: this.streams.fanOut,
      QS_QUEUE_DELETED_STREAM: this.streams.queueDeleted,
      QS_FEDERATION_STREAM: this.streams.federation,
      QS_SUBJECT_PREFIX: this.prefix,
      QS_FANOUT_DURABLE: `qs-${this.suffix}`,
      QS_RATE_FETCH_ADD_PACKAGES_PER_TOKEN: 0,
      QS_RATE_FETCH_ADD_PACKAGES_PER_CALLER: 0,
      QS_RATE_CREATE_USER_PER_CALLER: 0,
      QS_IDLE_KEY_UPDATE_CHECK_INTERVAL: 0,
      LOG_LEVEL: "silent",
      GRPC_HOST: "127.0.0.1",
      GRPC_PORT: 0,
      METRICS_PORT: 0,
      SHUTDOWN_GRACE_MS: 2000,
      ...this.options.config,
    };
  }

  /** Starts a QS instance on the harness's database (a second one is another replica). */
  async startInstance(extra: InstanceOptions = {}): Promise<QueueInstance> {
    const { notifier, now } = this.options;
    const module = queueModuleWith({
      ...(notifier ? { notifier } : {}),
      hooks: {
        relayPollIntervalMs: 100,
        sweepIntervalMs: 0,
        keyRefreshIntervalMs: 0,
        ...(now ? { now } : {}),
        ...extra.hooks,
      },
    });
    const running = await runModule(module, {
      env: {},
      signals: false,
      exit: false,
      resources: { database: this.db, bus: extra.bus ?? this.bus },
      overrides: this.config(),
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

  async startService(extra: InstanceOptions = {}): Promise<void> {
    this.server = await this.startInstance(extra);
    this.channel = createChannel(`127.0.0.1:${this.server.port}`);
    this.client = createServiceClient(queue.QueueServiceService, this.channel);
  }

  async stopService(): Promise<void> {
    this.channel?.close();
    this.channel = undefined;
    await this.server.stop();
  }

  /** A new client-side user registered on this QS (user record + first client record). */
  async newUser(options: { pushToken?: queue.PushToken; metadata?: Metadata } = {}): Promise<TestClient> {
    const keys = await this.client.getQueueConfigEncryptionKey({});
    return TestClient.register(() => this.client, keys, DOMAIN, options);
  }

  async stop(): Promise<void> {
    await this.stopService();
    await this.bus.close();
    const nc = await connect({ servers: natsUrl() });
    const jsm = await jetstreamManager(nc);
    for (const s of Object.values(this.streams)) await jsm.streams.delete(s).catch(() => false);
    await nc.close();
    await this.db.close();
  }
}
