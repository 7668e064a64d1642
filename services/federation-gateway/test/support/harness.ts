// Starts federation gateways for several domains on 127.0.0.1 with a static domain map, each
// with its own database, bus connection, subject prefix and stream names, so test files run in
// parallel and re-run cleanly. A node plays its homeserver's QS/DS on the bus: it publishes
// outbound envelopes and collects what its gateway hands to the local fan-out and queue-deleted
// subjects.
import { randomBytes } from "node:crypto";
import type { Client } from "@grpc/grpc-js";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { events, federation } from "@phoenix/proto";
import {
  type Bus,
  type BusMessage,
  connectNatsBus,
  createEmbeddedBus,
  peerSubjectToken,
  type Subscription,
} from "@phoenix/runtime/bus";
import { createChannel, createServiceClient, type ServiceClient } from "@phoenix/runtime/grpc";
import { runModule } from "@phoenix/runtime/module";
import {
  createTestDatabase,
  createTestPglite,
  freePort,
  type TestDatabase,
  type TestTlsFiles,
} from "@phoenix/runtime/testing";
import type { FederationGateway } from "../../src/gateway.js";
import { federationGatewayModule, GATEWAY_MIGRATIONS } from "../../src/index.js";

export function natsUrl(): string {
  const url = process.env.NATS_URL;
  if (!url) throw new Error("NATS_URL is not set: run the tests through vitest");
  return url;
}

export interface NetworkOptions {
  /** Extra env per domain. */
  env?: Record<string, Record<string, string>>;
  tls?: TestTlsFiles;
  mutualTls?: boolean;
  /** Domains whose homeserver runs all-in-one: PGlite and the embedded bus instead of Postgres and NATS. */
  embedded?: readonly string[];
}

/** A gateway running in this process (the module through the runtime's runner). */
export interface GatewayInstance {
  readonly gateway: FederationGateway;
  /** Public FederationService port. */
  readonly port: number;
  /** Internal FederationProxyService port. */
  readonly internalPort: number;
  /** The admin listener's port (FederationAdminService), when ADMIN_GRPC_PORT is set. */
  readonly adminPort: number | undefined;
  /** Graceful shutdown; rejects on a non-zero code. */
  stop(): Promise<void>;
}

/** One homeserver's gateway plus the bus side the tests play. */
export class GatewayNode {
  running: GatewayInstance | undefined;
  bus!: Bus;
  db!: TestDatabase;
  /** Messages the gateway published on this domain's fan-out subject, in stream order. */
  readonly fanOuts: BusMessage[] = [];
  readonly queueDeleted: BusMessage[] = [];
  /** The gateway's log lines (JSON), at the node's LOG_LEVEL (default silent). */
  readonly logs: string[] = [];
  private collectors: Subscription[] = [];
  readonly prefix: string;
  readonly streams: { outbound: string; fanOut: string; queueDeleted: string };

  constructor(
    readonly domain: string,
    readonly port: number,
    private readonly baseEnv: Record<string, string>,
    readonly embedded = false,
  ) {
    const tag = randomBytes(4).toString("hex");
    this.prefix = `t${tag}.`;
    const up = `T${tag}_${peerSubjectToken(domain).toUpperCase()}`;
    this.streams = { outbound: `${up}_OUT`, fanOut: `${up}_FANOUT`, queueDeleted: `${up}_QDEL` };
  }

  env(): Record<string, string> {
    return {
      ...this.baseEnv,
      FEDERATION_SUBJECT_PREFIX: this.prefix,
      FEDERATION_OUTBOUND_STREAM: this.streams.outbound,
      FEDERATION_FANOUT_STREAM: this.streams.fanOut,
      FEDERATION_QUEUE_DELETED_STREAM: this.streams.queueDeleted,
    };
  }

  async open(): Promise<void> {
    if (this.embedded) {
      this.db = await createTestPglite({ migrationsFolder: GATEWAY_MIGRATIONS });
      this.bus = await createEmbeddedBus({ db: this.db.db });
      return;
    }
    this.db = await createTestDatabase({ migrationsFolder: GATEWAY_MIGRATIONS });
    this.bus = await connectNatsBus({ servers: natsUrl(), name: `fedgw-test-${this.domain}` });
  }

  /** Starts (or restarts) the gateway on its fixed port. */
  async start(extraEnv: Record<string, string> = {}): Promise<GatewayInstance> {
    this.running = await this.startInstance({ ...this.env(), ...extraEnv });
    if (this.collectors.length === 0) await this.collect();
    return this.running;
  }

  /** A second gateway replica of this homeserver (same database and bus, its own ports); the caller stops it. */
  startReplica(extraEnv: Record<string, string> = {}): Promise<GatewayInstance> {
    return this.startInstance({ ...this.env(), GRPC_PORT: "0", ...extraEnv });
  }

  /** Runs `federationGatewayModule` on the node's database and bus, without signal handlers or process exit. */
  private async startInstance(env: Record<string, string>): Promise<GatewayInstance> {
    const running = await runModule(federationGatewayModule, {
      env,
      signals: false,
      exit: false,
      logDestination: { write: (line: string) => void this.logs.push(line) },
      resources: { database: this.db, bus: this.bus },
    });
    const port = running.grpcPort;
    if (port === undefined) throw new Error("the federation gateway module serves gRPC");
    return {
      gateway: running.instance.gateway,
      port,
      internalPort: running.instance.internalPort,
      adminPort: running.adminPort,
      async stop() {
        const code = await running.process.shutdown("stop");
        if (code !== 0) throw new Error(`the federation gateway shut down with code ${code}`);
      },
    };
  }

  async stopGateway(): Promise<void> {
    const running = this.running;
    this.running = undefined;
    await running?.stop();
  }

  private async collect(): Promise<void> {
    this.collectors.push(
      await this.bus.consume({ stream: this.streams.fanOut, durable: "test-collector" }, async (msg) => {
        this.fanOuts.push(msg);
      }),
      await this.bus.consume(
        { stream: this.streams.queueDeleted, durable: "test-collector" },
        async (msg) => {
          this.queueDeleted.push(msg);
        },
      ),
    );
  }

  /** Plays the local QS: hands an envelope to the outbound stream (dedupe id as given). */
  async publishOutbound(envelope: events.FederationEnvelope, dedupeId: string): Promise<void> {
    const subject = `${this.prefix}phoenix.federation.outbound.${peerSubjectToken(envelope.destinationDomain)}`;
    await this.bus.publish(subject, events.FederationEnvelope.encode(envelope).finish(), { id: dedupeId });
  }

  /** The FanOuts received so far. */
  receivedFanOuts(): events.FanOut[] {
    return this.fanOuts.map((m) => events.FanOut.decode(m.data));
  }

  async close(): Promise<void> {
    await this.stopGateway();
    for (const c of this.collectors) await c.stop();
    await this.bus.close();
    if (this.embedded) {
      await this.db.close();
      return;
    }
    const nc = await connect({ servers: natsUrl() });
    const jsm = await jetstreamManager(nc);
    for (const s of Object.values(this.streams)) await jsm.streams.delete(s).catch(() => false);
    await nc.close();
    await this.db.close();
  }
}

/** Gateways for `domains`, each knowing the others through the static map and allowing them. */
export class Network {
  readonly nodes = new Map<string, GatewayNode>();
  private readonly channels: Client[] = [];

  static async start(domains: readonly string[], options: NetworkOptions = {}): Promise<Network> {
    const network = new Network();
    const ports = new Map<string, number>();
    for (const d of domains) ports.set(d, await freePort());
    const peers = domains.map((d) => `${d}=127.0.0.1:${ports.get(d)}`).join(",");
    for (const domain of domains) {
      const tls = options.tls;
      const env: Record<string, string> = {
        SERVICE_NAME: `fedgw-${peerSubjectToken(domain).replaceAll("_", "-")}`,
        LOG_LEVEL: process.env.FEDGW_TEST_LOG_LEVEL ?? "silent",
        GRPC_HOST: "127.0.0.1",
        GRPC_PORT: String(ports.get(domain)),
        METRICS_PORT: "0",
        FEDERATION_INTERNAL_PORT: "0",
        SHUTDOWN_GRACE_MS: "1000",
        NATS_URL: natsUrl(),
        FEDERATION_DOMAIN: domain,
        // Required, as in production; kept by the node across restarts.
        FEDERATION_KEY_ENCRYPTION_KEY: randomBytes(32).toString("hex"),
        FEDERATION_PEERS: peers,
        FEDERATION_STATIC_ONLY: "true",
        FEDERATION_ALLOWED_DOMAINS: domains.filter((d) => d !== domain).join(","),
        FEDERATION_RETRY_INITIAL: "50ms",
        FEDERATION_RETRY_MAX: "400ms",
        FEDERATION_DELIVERY_TIMEOUT: "2s",
        FEDERATION_PEER_KEY_REFETCH: "0",
        FEDERATION_STANDBY_RETRY: "100ms",
        ...(tls
          ? {
              FEDERATION_TLS_CERT_FILE: tls.certFile(domain),
              FEDERATION_TLS_KEY_FILE: tls.keyFile(domain),
              FEDERATION_TLS_CA_FILE: tls.caFile,
              FEDERATION_MTLS: options.mutualTls ? "true" : "false",
            }
          : { FEDERATION_INSECURE_PLAINTEXT: "true" }),
        ...(options.env?.[domain] ?? {}),
      };
      const node = new GatewayNode(domain, ports.get(domain) ?? 0, env, options.embedded?.includes(domain));
      network.nodes.set(domain, node);
    }
    try {
      for (const node of network.nodes.values()) await node.open();
      for (const node of network.nodes.values()) await node.start();
    } catch (error) {
      await network.stop();
      throw error;
    }
    return network;
  }

  node(domain: string): GatewayNode {
    const node = this.nodes.get(domain);
    if (!node) throw new Error(`no node ${domain}`);
    return node;
  }

  /** A plaintext client of a node's public FederationService (tests that play a peer). */
  federationClient(domain: string): ServiceClient<typeof federation.FederationServiceService> {
    const channel = createChannel(`127.0.0.1:${this.node(domain).port}`);
    this.channels.push(channel);
    return createServiceClient(federation.FederationServiceService, channel);
  }

  /** A client of a node's internal FederationProxyService. */
  proxyClient(domain: string): ServiceClient<typeof federation.FederationProxyServiceService> {
    const port = this.node(domain).running?.internalPort;
    const channel = createChannel(`127.0.0.1:${port}`);
    this.channels.push(channel);
    return createServiceClient(federation.FederationProxyServiceService, channel);
  }

  async stop(): Promise<void> {
    for (const c of this.channels) c.close();
    for (const node of this.nodes.values()) {
      if (node.db) await node.close();
    }
  }
}
