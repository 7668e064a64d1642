// Several complete homeservers federating on loopback, in this process: one all-in-one homeserver
// (services/homeserver: AS, DS, QS, federation gateway, edge gateway) per domain, each on its own
// Postgres databases (`<prefix>auth`, …) and its own NATS subjects and streams, each federation
// gateway on a fixed loopback port and knowing the others through a static domain map. Clients are
// real `PhoenixClient`s talking REST to their own domain's edge gateway only.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PhoenixClient } from "@phoenix/client";
import { SigningKey, toHex } from "@phoenix/crypto";
import { type HomeserverAddresses, type RunningHomeserver, startHomeserver } from "@phoenix/homeserver";
import { busTopology } from "@phoenix/runtime/bus";
import { makeTestTls, startTcpProxy, type TcpProxy, type TestTlsFiles } from "@phoenix/runtime/testing";
import { TestClients } from "./clients.js";
import { TEST_LIMITS_ENV } from "./deployment.js";
import type { LogLevel } from "./homeserver.js";
import { freePorts, HomeserverProcess, type ServiceProcess } from "./service-process.js";
import { deleteNamespaceStreams, dropDatabases } from "./storage.js";

/** Who a domain's federation gateway federates with. */
export interface FederationPolicy {
  /** `allowlist` (default) or `open`. */
  mode?: "allowlist" | "open";
  /** Allowed peers (allowlist mode); default: every other domain of the federation. */
  allowed?: readonly string[];
  /** Refused in both modes. */
  denied?: readonly string[];
}

/** Options of {@link startFederation}. */
export interface FederationOptions {
  /** The domains, one homeserver each (lower-case DNS names, e.g. `alpha.test`). */
  domains: readonly string[];
  /** Per-domain policy; a domain without one allows every other domain of the federation. */
  policy?: Readonly<Record<string, FederationPolicy>>;
  /** TLS between gateways with a throw-away CA and per-domain certificates (default: plaintext). */
  tls?: boolean;
  /** Extra variables per domain (`AS_*`, `DS_*`, `QS_*`, `FEDERATION_*`, `EDGE_*`). */
  env?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /**
   * Log level of the homeservers and their services (default `silent`, or `warn` with
   * `captureLogs`; `PHOENIX_FED_LOG_LEVEL` overrides the default).
   */
  logLevel?: LogLevel;
  /** Keep each homeserver's log lines in its `logs` instead of printing them. */
  captureLogs?: boolean;
  /**
   * Run each homeserver as a child process (services/homeserver/src/main.ts) instead of in this
   * process, so a test can SIGKILL it (`crash()`); `addresses` and `logs` are then unavailable.
   */
  processes?: boolean;
  /**
   * Put a TCP proxy in front of each federation gateway and give the other domains its port as
   * the peer address, so a test can cut a federation link (`link(domain)`).
   */
  proxiedLinks?: boolean;
  /** Postgres and NATS to use instead of `DATABASE_URL` / `NATS_URL` (private servers). */
  databaseUrl?: string;
  natsUrl?: string;
}

/** One JSON log line of a homeserver or one of its services (`service` names which). */
export interface FederationLogLine {
  level: string;
  service: string;
  msg: string;
  [field: string]: unknown;
}

/** One domain's homeserver in a federation. */
export interface FederatedHomeserver {
  readonly domain: string;
  /** The edge gateway's base URL (`http://127.0.0.1:<port>`), the same across restarts. */
  readonly url: string;
  /** The federation gateway's public listener, `127.0.0.1:<port>`, the same across restarts. */
  readonly federationAddress: string;
  /** The domain's federation signing key (pinned with `FEDERATION_SIGNING_KEY`). */
  readonly federationKey: SigningKey;
  /** Its NATS streams (unique per run): the fan-out stream holds what its QS delivers to queues. */
  readonly streams: { fanOut: string; queueDeleted: string; federation: string };
  /** Its log lines so far, with `captureLogs` (empty otherwise), across restarts. */
  readonly logs: readonly FederationLogLine[];
  /** Its persisted stores: Postgres databases, bus namespace (streams end in `_<namespace>`), data dir. */
  readonly storage: { databases: readonly string[]; busNamespace: string; dataDir: string };
  /** gRPC addresses of the embedded services (they change on restart); throws while stopped. */
  readonly addresses: HomeserverAddresses;
  readonly running: boolean;
  /** Stops this homeserver only; databases, streams, keys and ports stay. */
  stop(): Promise<void>;
  /** With `processes`: SIGKILL (a crash); resolves once it is gone. `restart()` brings it back. */
  crash(): Promise<void>;
  /** With `processes`: the current process (empty otherwise). */
  readonly processes: readonly ServiceProcess[];
  /** Starts it again on the same databases, streams, keys and ports. */
  restart(): Promise<void>;
}

/** A running federation; `stopAll()` stops every homeserver and drops its databases and streams. */
export interface Federation {
  readonly domains: readonly string[];
  /** The TLS files when started with `tls: true`. */
  readonly tls: TestTlsFiles | undefined;
  homeserver(domain: string): FederatedHomeserver;
  /** With `proxiedLinks`: the proxy every other domain reaches `domain`'s federation gateway through. */
  link(domain: string): TcpProxy;
  /** The directory of the clients' SQLite stores made by {@link client}. */
  readonly clientsDir: string;
  /** A new user `name` registered on `domain` (REST transport to its edge gateway, own SQLite store). */
  client(domain: string, name: string): Promise<PhoenixClient>;
  /** Closes the clients and transports made by {@link client}, stops every homeserver, drops storage. */
  stopAll(): Promise<void>;
}

/** The federation's infrastructure is missing (`DATABASE_URL` / `NATS_URL` unset) or misconfigured. */
export class FederationSetupError extends Error {
  override readonly name = "FederationSetupError";
}

const SERVICE_DATABASES = ["auth", "delivery", "queue", "federation"] as const;

/**
 * Starts one all-in-one homeserver per domain on Postgres (`DATABASE_URL`) and NATS (`NATS_URL`),
 * with federation gateways on fixed free loopback ports, a static domain map
 * (`FEDERATION_PEERS`, `FEDERATION_STATIC_ONLY`), each allowing the others (or `policy`), over
 * TLS or plaintext. Resolves once every homeserver is ready.
 */
export async function startFederation(options: FederationOptions): Promise<Federation> {
  const databaseUrl = options.databaseUrl ?? process.env.DATABASE_URL;
  const natsUrl = options.natsUrl ?? process.env.NATS_URL;
  if (!databaseUrl || !natsUrl) {
    throw new FederationSetupError("DATABASE_URL and NATS_URL must be set (run the tests through vitest)");
  }
  const domains = [...options.domains];
  if (new Set(domains).size !== domains.length || domains.length === 0) {
    throw new FederationSetupError(`domains must be distinct and non-empty: ${domains.join(", ")}`);
  }
  const tag = randomBytes(4).toString("hex");
  const dir = await mkdtemp(join(tmpdir(), "phoenix-federation-"));
  const tls = options.tls ? makeTestTls(domains) : undefined;
  const ports = await freePorts(domains.length * 2);
  const fedPort = (i: number) => ports[2 * i] as number;
  const links = options.proxiedLinks
    ? await Promise.all(domains.map((_, i) => startTcpProxy({ host: "127.0.0.1", port: fedPort(i) })))
    : [];
  // A domain reaches itself directly and the others through their link proxies, if any.
  const peersOf = (self: number) =>
    domains
      .map((d, i) => `${d}=127.0.0.1:${i === self ? fedPort(i) : (links[i]?.port ?? fedPort(i))}`)
      .join(",");
  const logLevel =
    options.logLevel ??
    (process.env.PHOENIX_FED_LOG_LEVEL as LogLevel | undefined) ??
    (options.captureLogs ? "warn" : "silent");

  const nodes = domains.map((domain, i) => {
    const policy = options.policy?.[domain] ?? {};
    const others = domains.filter((d) => d !== domain);
    const token = domain.replace(/[^a-z0-9]/g, "_").slice(0, 16);
    const seed = new Uint8Array(randomBytes(32));
    const env: Record<string, string> = {
      ...TEST_LIMITS_ENV,
      HOMESERVER_DOMAIN: domain,
      DATA_DIR: join(dir, domain),
      HTTP_HOST: "127.0.0.1",
      HTTP_PORT: String(ports[2 * i + 1]),
      DATABASE_URL: databaseUrl,
      HOMESERVER_DATABASE_PREFIX: `fed_${tag}_${i}_${token}_`,
      NATS_URL: natsUrl,
      HOMESERVER_BUS_NAMESPACE: `f${tag}-${i}`,
      GRPC_PORT: "0",
      METRICS_PORT: "0",
      LOG_LEVEL: logLevel,
      SERVICES_LOG_LEVEL: logLevel,
      SHUTDOWN_GRACE_MS: "4000",
      FEDERATION_HOST: "127.0.0.1",
      FEDERATION_PORT: String(fedPort(i)),
      FEDERATION_PEERS: peersOf(i),
      FEDERATION_STATIC_ONLY: "true",
      FEDERATION_POLICY: policy.mode ?? "allowlist",
      ...listVariable("FEDERATION_ALLOWED_DOMAINS", policy.allowed ?? others),
      ...listVariable("FEDERATION_DENIED_DOMAINS", policy.denied ?? []),
      // Pinned, so a test can sign as this domain (replays) and a restart keeps it anyway.
      FEDERATION_SIGNING_KEY: toHex(seed),
      // Quick retries: a peer that comes back is noticed within a second.
      FEDERATION_RETRY_INITIAL: "100ms",
      FEDERATION_RETRY_MAX: "1s",
      FEDERATION_DELIVERY_TIMEOUT: "5s",
      FEDERATION_PEER_KEY_REFETCH: "0",
      FEDERATION_STANDBY_RETRY: "200ms",
      FEDERATION_LANE_LEASE: "5s",
      ...(tls
        ? {
            FEDERATION_TLS_CERT_FILE: tls.certFile(domain),
            FEDERATION_TLS_KEY_FILE: tls.keyFile(domain),
            FEDERATION_TLS_CA_FILE: tls.caFile,
          }
        : { FEDERATION_INSECURE_PLAINTEXT: "true" }),
      ...(options.env?.[domain] ?? {}),
    };
    return new Node(
      domain,
      env,
      `127.0.0.1:${fedPort(i)}`,
      SigningKey.fromSeed(seed),
      options.captureLogs === true,
      options.processes === true,
    );
  });

  const clients = await TestClients.create("phoenix-federation-clients-");
  const stopAll = async (): Promise<void> => {
    await clients.close();
    await Promise.all(nodes.map((n) => n.stop().catch(() => undefined)));
    for (const link of links) await link.close();
    await dropDatabases(
      databaseUrl,
      nodes.flatMap((n) => SERVICE_DATABASES.map((s) => `${n.env.HOMESERVER_DATABASE_PREFIX}${s}`)),
    ).catch(() => undefined);
    await deleteNamespaceStreams(
      natsUrl,
      nodes.map((n) => n.env.HOMESERVER_BUS_NAMESPACE as string),
    ).catch(() => undefined);
    tls?.remove();
    await rm(dir, { recursive: true, force: true });
  };

  try {
    // Sequentially: each start runs migrations and opens four databases; in parallel they would
    // compete for the same two cores without finishing sooner.
    for (const node of nodes) await node.restart();
  } catch (error) {
    await stopAll();
    throw error;
  }

  const byDomain = new Map(nodes.map((n) => [n.domain, n]));
  const homeserver = (domain: string): Node => {
    const node = byDomain.get(domain);
    if (node === undefined) throw new FederationSetupError(`${domain} is not part of this federation`);
    return node;
  };
  return {
    domains,
    tls,
    homeserver,
    link(domain) {
      const link = links[domains.indexOf(domain)];
      if (link === undefined) throw new FederationSetupError(`no link proxy for ${domain} (proxiedLinks)`);
      return link;
    },
    clientsDir: clients.dir,
    client: (domain, name) =>
      clients.register(
        homeserver(domain).url,
        domain,
        name,
        `${domain}-${name}-${randomBytes(3).toString("hex")}`,
      ),
    stopAll,
  };
}

/** One domain's homeserver: started, stopped and restarted on the same environment. */
class Node implements FederatedHomeserver {
  private current: RunningHomeserver | undefined;
  private child: HomeserverProcess | undefined;
  readonly url: string;
  readonly logs: FederationLogLine[] = [];
  readonly streams: { fanOut: string; queueDeleted: string; federation: string };

  constructor(
    readonly domain: string,
    readonly env: Readonly<Record<string, string>>,
    readonly federationAddress: string,
    readonly federationKey: SigningKey,
    private readonly captureLogs: boolean,
    private readonly asProcess: boolean,
  ) {
    this.url = `http://127.0.0.1:${env.HTTP_PORT}`;
    const namespace = env.HOMESERVER_BUS_NAMESPACE;
    if (namespace === undefined) throw new FederationSetupError("no bus namespace");
    this.streams = busTopology(namespace).streams;
  }

  get running(): boolean {
    return this.current !== undefined || this.child?.running === true;
  }

  get processes(): readonly ServiceProcess[] {
    return this.child === undefined ? [] : [this.child];
  }

  get storage(): FederatedHomeserver["storage"] {
    const prefix = this.env.HOMESERVER_DATABASE_PREFIX as string;
    return {
      databases: SERVICE_DATABASES.map((s) => `${prefix}${s}`),
      busNamespace: this.env.HOMESERVER_BUS_NAMESPACE as string,
      dataDir: this.env.DATA_DIR as string,
    };
  }

  get addresses(): HomeserverAddresses {
    if (this.current === undefined) throw new FederationSetupError(`${this.domain} is stopped`);
    return this.current.addresses;
  }

  async stop(): Promise<void> {
    const running = this.current;
    this.current = undefined;
    await running?.stop();
    await this.child?.stop();
  }

  async crash(): Promise<void> {
    if (!this.asProcess) throw new FederationSetupError("only a homeserver process can crash (processes)");
    await this.child?.kill();
  }

  async restart(): Promise<void> {
    await this.stop();
    if (this.asProcess) {
      // The homeserver's own few lines (its ready line among them) at info, its services as set.
      this.child = HomeserverProcess.start([], { ...this.env, LOG_LEVEL: "info" }, { name: this.domain });
      try {
        await this.child.ready();
      } catch (error) {
        await this.child.kill();
        throw error;
      }
      return;
    }
    this.current = await startHomeserver({
      env: { ...this.env },
      ...(this.captureLogs ? { logDestination: { write: (line: string) => this.collect(line) } } : {}),
    });
  }

  private collect(line: string): void {
    try {
      this.logs.push(JSON.parse(line) as FederationLogLine);
    } catch {
      // pino writes one JSON object per line; anything else is not ours to interpret
    }
  }
}

/** `{ name: "a,b" }`, or nothing for an empty list (the gateway reads unset as empty). */
function listVariable(name: string, values: readonly string[]): Record<string, string> {
  return values.length === 0 ? {} : { [name]: values.join(",") };
}
