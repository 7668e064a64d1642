// Test harness: a QS on a fresh Postgres database and NATS JetStream (unique subject prefix and
// stream names), reached through the generated gRPC definitions on 127.0.0.1, as a client would.
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import type { Client, Metadata } from "@grpc/grpc-js";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { queue } from "@phoenix/proto";
import { type Bus, connectNatsBus } from "@phoenix/runtime/bus";
import { createChannel, createServiceClient, type ServiceClient } from "@phoenix/runtime/grpc";
import { createLogger } from "@phoenix/runtime/log";
import { createTestDatabase, type TestDatabase } from "@phoenix/runtime/testing";
import { type QueueServer, type QueueServiceOptions, startQueueServer } from "../../src/service.js";
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

export type HarnessOptions = Partial<
  Pick<
    QueueServiceOptions,
    | "ratchetPolicy"
    | "limits"
    | "now"
    | "keyRotationIntervalMs"
    | "keyRetirementGraceMs"
    | "authKeyGraceMs"
    | "rateLimits"
    | "trustedProxies"
    | "federationProxyAddress"
    | "pushWebhookAllow"
    | "messageExpiryMs"
  >
> & { notifier?: QueueServiceOptions["notifier"] };

/** One QS under test with its database, bus and a gRPC client. */
export class Harness {
  readonly suffix = randomBytes(6).toString("hex");
  readonly prefix = `t${this.suffix}.`;
  readonly storageKey = new Uint8Array(randomBytes(32));
  db!: TestDatabase;
  bus!: Bus;
  server!: QueueServer;
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

  static async start(options: HarnessOptions = {}): Promise<Harness> {
    const h = new Harness();
    h.options = options;
    h.db = await createTestDatabase({ migrationsFolder: MIGRATIONS });
    h.bus = await connectNatsBus({ servers: natsUrl(), name: "qs-test" });
    await h.startService();
    return h;
  }

  /** Options the service is (re)started with. */
  serviceOptions(extra: Partial<QueueServiceOptions> = {}): QueueServiceOptions {
    return {
      database: this.db,
      bus: this.bus,
      domain: DOMAIN,
      logger: createLogger({ service: "queue-test", level: "silent" }),
      storageKey: this.storageKey,
      streams: this.streams,
      subjectPrefix: this.prefix,
      relayPollIntervalMs: 100,
      sweepIntervalMs: 0,
      idleKeyUpdateIntervalMs: 0,
      keyRefreshIntervalMs: 0,
      fanOutDurable: `qs-${this.suffix}`,
      ...this.options,
      ...extra,
    };
  }

  async startService(extra: Partial<QueueServiceOptions> = {}): Promise<void> {
    this.server = await startQueueServer(this.serviceOptions(extra));
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
