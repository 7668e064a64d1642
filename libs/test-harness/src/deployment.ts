// A whole homeserver deployment for end-to-end tests, reached only through its edge gateway:
// either the all-in-one homeserver process (PGlite + embedded bus in a temp data dir) or the five
// services as separate processes on Postgres (one database each) and NATS JetStream (streams and
// subjects unique per deployment). Every process is a real `src/main.ts` run through tsx.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { authModule } from "@phoenix/auth";
import { deliveryModule } from "@phoenix/delivery";
import { edgeGatewayModule } from "@phoenix/edge-gateway";
import { federationGatewayModule } from "@phoenix/federation-gateway";
import { queueModule } from "@phoenix/queue";
import { busTopology } from "@phoenix/runtime/bus";
import { type EmbedSettings, moduleEnv } from "@phoenix/runtime/module";
import {
  EventuallyTimeoutError,
  eventually,
  startTcpBalancer,
  type TcpBalancer,
} from "@phoenix/runtime/testing";
import type { LogLevel } from "./homeserver.js";
import { freePorts, HomeserverProcess, ProcessStartError, ServiceProcess } from "./service-process.js";
import { adminQueries, deleteStreams, dropDatabases } from "./storage.js";

/** `all-in-one`: services/homeserver as one process; `services`: the five services apart. */
export type DeploymentKind = "all-in-one" | "services";

/** Options of {@link startDeployment}. */
export interface DeploymentOptions {
  kind: DeploymentKind;
  /** The homeserver's domain (default `e2e.test`). */
  domain?: string;
  /** Extra variables for every process (a service ignores the ones it does not know). */
  env?: Record<string, string>;
  /**
   * `services`: extra variables for one service's processes only (after `env`), e.g. the
   * ADMIN_GRPC_PORT of each service with an admin listener.
   */
  serviceEnv?: Partial<
    Record<"auth" | "delivery" | "queue" | "federation-gateway" | "edge-gateway", Record<string, string>>
  >;
  /**
   * Log level of the services (default `info`; all-in-one: `SERVICES_LOG_LEVEL` of the embedded
   * services, default `warn`). Readiness never depends on it.
   */
  logLevel?: LogLevel;
  /** Bound of one start, every process included (default 180 s: the first PGlite start is slow). */
  startTimeoutMs?: number;
  /**
   * `services`: processes of the delivery and queue services (default 1 each). Replicas share
   * their database and bus consumers and sit behind one round-robin TCP balancer on the
   * service's address (tcp-balancer.ts), so the other services keep one address per service.
   * Replicas are named `delivery-1`, `delivery-2`, …; a single process keeps the plain name.
   */
  replicas?: { delivery?: number; queue?: number };
  /** `services`: Postgres and NATS to use instead of `DATABASE_URL` / `NATS_URL` (private servers). */
  databaseUrl?: string;
  natsUrl?: string;
  /** The edge gateway's port (default: a free one), e.g. a restored deployment's old port. */
  port?: number;
  /** `services`: the four secrets (default: random per deployment); a restore passes the old ones. */
  secrets?: DeploymentSecrets;
  /** `services`: database and bus namespace, lower-case letters and digits (default `e2e<random>`). */
  namespace?: string;
  /**
   * `services`: the databases exist already (restored from a backup) and are not created; `stop()`
   * still drops them. Default false (they are created and must not exist).
   */
  existingDatabases?: boolean;
  /** `all-in-one`: run on this data directory (e.g. a restored copy); `stop()` leaves it in place. */
  dataDir?: string;
}

/**
 * The secrets a five-service deployment keeps outside its databases (docs/operations.md), by the
 * variable that carries each: 32 bytes as 64 hex characters.
 */
export interface DeploymentSecrets {
  AS_KEY_ENCRYPTION_KEY: string;
  DS_REPLAY_MARKER_KEY: string;
  QS_STORAGE_KEY: string;
  FEDERATION_KEY_ENCRYPTION_KEY: string;
}

/** Four fresh random {@link DeploymentSecrets}. */
export function randomDeploymentSecrets(): DeploymentSecrets {
  const key = () => randomBytes(32).toString("hex");
  return {
    AS_KEY_ENCRYPTION_KEY: key(),
    DS_REPLAY_MARKER_KEY: key(),
    QS_STORAGE_KEY: key(),
    FEDERATION_KEY_ENCRYPTION_KEY: key(),
  };
}

/** A running deployment; everything a client needs is `url`. */
export interface Deployment {
  readonly kind: DeploymentKind;
  readonly domain: string;
  /** The edge gateway's base URL (`http://127.0.0.1:<port>`), the same across restarts. */
  readonly url: string;
  /** The running processes (one, or five: auth, delivery, queue, federation-gateway, edge-gateway). */
  readonly processes: readonly ServiceProcess[];
  /** What `stop()` removes: Postgres databases and NATS streams (`services`), or the data dir. */
  readonly storage: { databases: readonly string[]; streams: readonly string[]; dataDir?: string };
  /** `services`: the secrets its processes run with (what a backup must keep besides the dumps). */
  readonly secrets?: DeploymentSecrets;
  /** Stops every process (SIGTERM) and starts them again on the same storage, keys and port. */
  restart(): Promise<void>;
  /**
   * `services`: kills process `name` with SIGKILL (a crash; a replica leaves its balancer first)
   * and resolves once it is gone.
   */
  crash(name: string): Promise<void>;
  /** `services`: starts the exited process `name` again (same environment and port); resolves once it listens. */
  respawn(name: string): Promise<void>;
  /** Stops every process (SIGTERM, SIGKILL after a bound), drops its databases and streams. */
  stop(): Promise<void>;
}

/** The deployment's infrastructure is missing (`DATABASE_URL` / `NATS_URL` unset). */
export class DeploymentSetupError extends Error {
  override readonly name = "DeploymentSetupError";
}

/**
 * Limits for test clients: every client calls from 127.0.0.1, so the per-caller and per-IP rate
 * limits of AS, QS and edge gateway are raised out of the way (a service ignores the others').
 */
export const TEST_LIMITS_ENV: Readonly<Record<string, string>> = {
  AS_CALLER_RATE_CHECK_HANDLE_PER_MINUTE: "1000000",
  AS_CALLER_RATE_PACKAGES_PER_MINUTE: "1000000",
  AS_TARGET_RATE_PACKAGES_PER_HOUR: "1000000",
  AS_CALLER_RATE_PROFILE_PER_MINUTE: "1000000",
  AS_CALLER_RATE_ENQUEUE_PER_MINUTE: "1000000",
  AS_CALLER_RATE_CREATE_HANDLE_PER_MINUTE: "1000000",
  AS_SOURCE_RATE_REGISTER_PER_HOUR: "1000000",
  AS_ENQUEUE_RATE_PER_MINUTE: "1000000",
  DS_CALLER_RATE_GROUP_ID_PER_MINUTE: "1000000",
  QS_RATE_FETCH_ADD_PACKAGES_PER_TOKEN: "1000000",
  QS_RATE_FETCH_ADD_PACKAGES_PER_CALLER: "1000000",
  QS_RATE_CREATE_USER_PER_CALLER: "1000000",
  EDGE_RATE_LIMIT_PER_SECOND: "100000",
  EDGE_RATE_LIMIT_BURST: "100000",
};

/** Starts a deployment of `kind`; resolves once the edge gateway reports every upstream ready. */
export async function startDeployment(options: DeploymentOptions): Promise<Deployment> {
  const domain = options.domain ?? "e2e.test";
  const settings: Settings = {
    domain,
    env: { ...TEST_LIMITS_ENV, ...options.env },
    serviceEnv: options.serviceEnv ?? {},
    logLevel: options.logLevel,
    timeoutMs: options.startTimeoutMs ?? 180_000,
    replicas: { delivery: options.replicas?.delivery ?? 1, queue: options.replicas?.queue ?? 1 },
    databaseUrl: options.databaseUrl,
    natsUrl: options.natsUrl,
    port: options.port,
    secrets: options.secrets,
    namespace: options.namespace,
    existingDatabases: options.existingDatabases ?? false,
    dataDir: options.dataDir,
  };
  return options.kind === "all-in-one" ? startAllInOne(settings) : startServices(settings);
}

interface Settings {
  domain: string;
  env: Record<string, string>;
  serviceEnv: NonNullable<DeploymentOptions["serviceEnv"]>;
  logLevel: LogLevel | undefined;
  timeoutMs: number;
  replicas: { delivery: number; queue: number };
  databaseUrl: string | undefined;
  natsUrl: string | undefined;
  port: number | undefined;
  secrets: DeploymentSecrets | undefined;
  namespace: string | undefined;
  existingDatabases: boolean;
  dataDir: string | undefined;
}

/** What a kind provides: start its processes (on fixed storage and ports), clean up at the end. */
interface Launcher {
  url: string;
  storage: Deployment["storage"];
  secrets?: DeploymentSecrets;
  processes: ServiceProcess[];
  /** Spawns every process and waits for each ready line. */
  start(): Promise<void>;
  crash?(name: string): Promise<void>;
  respawn?(name: string): Promise<void>;
  /** Drops storage (databases, streams, temp dirs); processes are stopped already. */
  cleanUp(): Promise<void>;
}

async function run(kind: DeploymentKind, settings: Settings, launcher: Launcher): Promise<Deployment> {
  const stopProcesses = async (): Promise<void> => {
    // The front door first, so no request reaches a service that is already gone.
    const running = [...launcher.processes].reverse();
    launcher.processes.length = 0;
    await Promise.all(running.map((p) => p.stop()));
  };
  const start = async (): Promise<void> => {
    try {
      await launcher.start();
      await waitReady(launcher.url, launcher.processes, settings.timeoutMs);
    } catch (error) {
      await stopProcesses();
      throw error;
    }
  };
  try {
    await start();
  } catch (error) {
    await launcher.cleanUp().catch(() => undefined);
    throw error;
  }
  let stopped = false;
  return {
    kind,
    domain: settings.domain,
    url: launcher.url,
    storage: launcher.storage,
    ...(launcher.secrets ? { secrets: launcher.secrets } : {}),
    get processes() {
      return [...launcher.processes];
    },
    async restart() {
      await stopProcesses();
      await start();
    },
    async crash(name) {
      if (!launcher.crash) throw new DeploymentSetupError(`${kind}: no single process to crash`);
      await launcher.crash(name);
    },
    async respawn(name) {
      if (!launcher.respawn) throw new DeploymentSetupError(`${kind}: no single process to respawn`);
      await launcher.respawn(name);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopProcesses();
      await launcher.cleanUp();
    },
  };
}

/** Polls `/readyz` until every upstream is SERVING (the gateway only proxies; the services must answer). */
async function waitReady(
  url: string,
  processes: readonly ServiceProcess[],
  timeoutMs: number,
): Promise<void> {
  let last = "";
  try {
    await eventually(
      async () => {
        const dead = processes.find((p) => !p.running);
        if (dead) throw dead.startError("exited while the deployment was starting");
        try {
          const response = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5000) });
          last = `${response.status} ${await response.text()}`;
          return response.status === 200;
        } catch (error) {
          last = error instanceof Error ? error.message : String(error);
          return false;
        }
      },
      { timeoutMs, intervalMs: 200 },
    );
  } catch (error) {
    if (!(error instanceof EventuallyTimeoutError)) throw error;
    throw new ProcessStartError(
      `${url}/readyz never answered 200 (last: ${last}); outputs:\n${processes
        .map((p) => `--- ${p.name}\n${p.output.slice(-2000)}`)
        .join("\n")}`,
    );
  }
}

async function startAllInOne(settings: Settings): Promise<Deployment> {
  const dataDir = settings.dataDir ?? (await mkdtemp(join(tmpdir(), "phoenix-e2e-")));
  const port = settings.port ?? ((await freePorts(1)) as [number])[0];
  const processes: ServiceProcess[] = [];
  return run("all-in-one", settings, {
    url: `http://127.0.0.1:${port}`,
    storage: { databases: [], streams: [], dataDir },
    processes,
    async start() {
      const p = HomeserverProcess.start(
        ["--data-dir", dataDir, "--port", String(port), "--domain", settings.domain],
        {
          // The homeserver's own few lines (its ready line among them) stay at info.
          LOG_LEVEL: "info",
          ...(settings.logLevel ? { SERVICES_LOG_LEVEL: settings.logLevel } : {}),
          ...settings.env,
        },
      );
      processes.push(p);
      await p.ready(settings.timeoutMs);
    },
    cleanUp: async () => {
      if (settings.dataDir === undefined) await rm(dataDir, { recursive: true, force: true });
    },
  });
}

/** The five services in start order; the edge gateway last (it is the deployment's front door). */
const SERVICES = ["auth", "delivery", "queue", "federation-gateway", "edge-gateway"] as const;
type ServiceName = (typeof SERVICES)[number];

/** Every variable each service process gets: the exact wiring docs/deployment.md describes. */
export interface ServicesWiring {
  /** Per service, its environment (without PATH/HOME). */
  env: Record<ServiceName, Record<string, string>>;
  databases: string[];
  streams: string[];
  url: string;
  secrets: DeploymentSecrets;
}

/**
 * The environment of each of the five services for one deployment: its own database on the
 * `databaseUrl` server, streams and subjects under `namespace`, gRPC ports from `ports`. Each
 * process's variables are its module's `embed` of the deployment's settings (the same typed
 * settings `startModules` hands embedded modules) plus what a deployment adds (its database,
 * NATS, fixed ports, secrets), written by `moduleEnv`; `env` is added to every process as is.
 */
export function servicesWiring(input: {
  domain: string;
  databaseUrl: string;
  natsUrl: string;
  /** Lower-case letters and digits: database names, subject prefix and stream suffix. */
  namespace: string;
  ports: {
    auth: number;
    delivery: number;
    queue: number;
    federation: number;
    federationInternal: number;
    http: number;
  };
  logLevel: LogLevel;
  env: Record<string, string>;
  /** Default: random per call. */
  secrets?: DeploymentSecrets;
}): ServicesWiring {
  const { domain, namespace, ports } = input;
  const database = (service: string) => {
    const url = new URL(input.databaseUrl);
    url.pathname = `/${namespace}_${service}`;
    return url.toString();
  };
  const address = (port: number) => `127.0.0.1:${port}`;
  // The bus names of a namespaced homeserver: every process of this deployment gets the same.
  const bus = busTopology(namespace);
  const settings: EmbedSettings = {
    domain,
    // The processes keep no files: Postgres, NATS and every secret are given.
    dataDir: "",
    logLevel: input.logLevel,
    shutdownGraceMs: 2000,
    addresses: {
      auth: address(ports.auth),
      delivery: address(ports.delivery),
      queue: address(ports.queue),
      federationInternal: address(ports.federationInternal),
    },
    bus,
  };
  const grpc = (service: ServiceName, grpcPort: number, databaseName: string) => ({
    SERVICE_NAME: service,
    LOG_LEVEL: input.logLevel,
    GRPC_HOST: "127.0.0.1",
    GRPC_PORT: grpcPort,
    METRICS_PORT: 0,
    SHUTDOWN_GRACE_MS: settings.shutdownGraceMs,
    DATABASE_URL: database(databaseName),
    NATS_URL: input.natsUrl,
  });
  // Cross-domain requests of AS, DS and QS go through the federation gateway's internal listener.
  const federationProxy = { FEDERATION_PROXY_ADDRESS: settings.addresses.federationInternal };
  // Secrets an operator keeps outside the databases; fixed per deployment so restarts reopen.
  const secrets = input.secrets ?? randomDeploymentSecrets();
  const keys = {
    as: secrets.AS_KEY_ENCRYPTION_KEY,
    ds: secrets.DS_REPLAY_MARKER_KEY,
    qs: secrets.QS_STORAGE_KEY,
    federation: secrets.FEDERATION_KEY_ENCRYPTION_KEY,
  };
  const env = {
    auth: moduleEnv(authModule, {
      ...grpc("auth", ports.auth, "auth"),
      ...federationProxy,
      ...authModule.embed?.(settings),
      AS_KEY_ENCRYPTION_KEY: keys.as,
    }),
    delivery: moduleEnv(deliveryModule, {
      ...grpc("delivery", ports.delivery, "delivery"),
      ...federationProxy,
      ...deliveryModule.embed?.(settings),
      DS_REPLAY_MARKER_KEY: keys.ds,
    }),
    queue: moduleEnv(queueModule, {
      ...grpc("queue", ports.queue, "queue"),
      ...federationProxy,
      ...queueModule.embed?.(settings),
      QS_STORAGE_KEY: keys.qs,
    }),
    "federation-gateway": moduleEnv(federationGatewayModule, {
      ...grpc("federation-gateway", ports.federation, "federation"),
      ...federationGatewayModule.embed?.(settings),
      FEDERATION_KEY_ENCRYPTION_KEY: keys.federation,
      FEDERATION_INSECURE_PLAINTEXT: true,
      FEDERATION_INTERNAL_PORT: ports.federationInternal,
    }),
    "edge-gateway": moduleEnv(edgeGatewayModule, {
      SERVICE_NAME: "edge-gateway",
      LOG_LEVEL: input.logLevel,
      METRICS_PORT: 0,
      HTTP_HOST: "127.0.0.1",
      HTTP_PORT: ports.http,
      ...edgeGatewayModule.embed?.(settings),
    }),
  } satisfies Record<ServiceName, Record<string, string>>;
  return {
    url: `http://127.0.0.1:${ports.http}`,
    secrets,
    databases: ["auth", "delivery", "queue", "federation"].map((s) => `${namespace}_${s}`),
    streams: Object.values(bus.streams),
    // The test's variables (limits) go to every process; a service ignores the others'.
    env: Object.fromEntries(
      SERVICES.map((service) => [service, { ...input.env, ...env[service] }]),
    ) as Record<ServiceName, Record<string, string>>,
  };
}

/** One process of a `services` deployment. */
interface Unit {
  name: string;
  service: ServiceName;
  env: Record<string, string>;
  port: number;
  /** A replica's place in its service's balancer. */
  slot?: { balancer: TcpBalancer; index: number };
}

async function startServices(settings: Settings): Promise<Deployment> {
  const databaseUrl = settings.databaseUrl ?? process.env.DATABASE_URL;
  const natsUrl = settings.natsUrl ?? process.env.NATS_URL;
  if (!databaseUrl || !natsUrl)
    throw new DeploymentSetupError("DATABASE_URL and NATS_URL must be set: run tests through vitest");
  const namespace = settings.namespace ?? `e2e${randomBytes(5).toString("hex")}`;
  const [auth, delivery, queue, federation, federationInternal, freeHttp] = (await freePorts(6)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const http = settings.port ?? freeHttp;
  // Replicated services: the balancer holds the service's address, each replica its own port.
  const balancers = new Map<ServiceName, TcpBalancer>();
  const replicaPorts = new Map<ServiceName, number[]>();
  for (const service of ["delivery", "queue"] as const) {
    const count = settings.replicas[service];
    if (count <= 1) continue;
    const own = await freePorts(count);
    replicaPorts.set(service, own);
    balancers.set(service, await startTcpBalancer(own.map((port) => ({ host: "127.0.0.1", port }))));
  }
  const wiring = servicesWiring({
    domain: settings.domain,
    databaseUrl,
    natsUrl,
    namespace,
    ports: {
      auth,
      delivery: balancers.get("delivery")?.port ?? delivery,
      queue: balancers.get("queue")?.port ?? queue,
      federation,
      federationInternal,
      http,
    },
    logLevel: settings.logLevel ?? "info",
    env: settings.env,
    ...(settings.secrets ? { secrets: settings.secrets } : {}),
  });
  const ports: Record<ServiceName, number> = {
    auth,
    delivery,
    queue,
    "federation-gateway": federation,
    "edge-gateway": http,
  };
  /** Every process of the deployment, in start order: its name, environment, port, balancer slot. */
  const units: Unit[] = SERVICES.flatMap((service): Unit[] => {
    const own = replicaPorts.get(service);
    if (own === undefined)
      return [
        {
          name: service as string,
          service,
          env: { ...wiring.env[service], ...settings.serviceEnv[service] },
          port: ports[service],
        },
      ];
    return own.map((port, index) => ({
      name: `${service}-${index + 1}`,
      service,
      env: { ...wiring.env[service], ...settings.serviceEnv[service], GRPC_PORT: String(port) },
      port,
      slot: { balancer: balancers.get(service) as TcpBalancer, index },
    }));
  });
  const unit = (name: string) => {
    const found = units.findIndex((u) => u.name === name);
    if (found < 0) throw new DeploymentSetupError(`no process ${name} in this deployment`);
    return found;
  };
  const spawnUnit = (u: Unit) =>
    ServiceProcess.spawn({ name: u.name, entry: `services/${u.service}/src/main.ts`, env: u.env });
  const processes: ServiceProcess[] = [];
  const cleanUp = async (): Promise<void> => {
    const failures: unknown[] = [];
    for (const balancer of balancers.values()) await balancer.close();
    await dropDatabases(databaseUrl, wiring.databases).catch((e: unknown) => failures.push(e));
    await deleteStreams(natsUrl, wiring.streams).catch((e: unknown) => failures.push(e));
    if (failures.length > 0) throw new AggregateError(failures, "dropping the deployment's storage failed");
  };
  try {
    // Each service migrates its own database at start; creating it is the operator's (our) job.
    // Restored databases exist already.
    if (!settings.existingDatabases)
      await adminQueries(
        databaseUrl,
        wiring.databases.map((name) => `CREATE DATABASE "${name}"`),
      );
  } catch (error) {
    await cleanUp().catch(() => undefined);
    throw error;
  }
  return run("services", settings, {
    url: wiring.url,
    storage: { databases: wiring.databases, streams: wiring.streams },
    secrets: wiring.secrets,
    processes,
    async start() {
      // All at once: every port is fixed, and each service connects to the others lazily.
      for (const u of units) {
        u.slot?.balancer.setLive(u.slot.index, true);
        processes.push(spawnUnit(u));
      }
      const results = await Promise.allSettled(
        processes.map((p, i) =>
          p.waitForPort((units[i] as Unit).port, {
            what: "its listener",
            timeoutMs: settings.timeoutMs,
          }),
        ),
      );
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
      if (failed.length > 0) {
        throw new ProcessStartError(
          failed.map((f) => (f.reason instanceof Error ? f.reason.message : String(f.reason))).join("\n\n"),
        );
      }
    },
    async crash(name) {
      const i = unit(name);
      units[i]?.slot?.balancer.setLive(units[i].slot.index, false);
      await processes[i]?.kill();
    },
    async respawn(name) {
      const i = unit(name);
      const u = units[i] as Unit;
      if (processes[i]?.running) throw new DeploymentSetupError(`${name} is still running`);
      const p = spawnUnit(u);
      processes[i] = p;
      await p.waitForPort(u.port, { what: "its listener", timeoutMs: settings.timeoutMs });
      u.slot?.balancer.setLive(u.slot.index, true);
    },
    cleanUp,
  });
}
