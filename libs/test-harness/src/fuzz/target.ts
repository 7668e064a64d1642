// The fuzzer's target: the five services of one domain as separate processes on Postgres and
// NATS (the production shape), so a crash is a child's exit and each service's memory is its
// own RSS. A fake federation peer (`peer.fuzz.test`) runs in the fuzzer's process: its
// GetDomainKeys publishes a key the fuzzer holds, so mutated federation requests the fuzzer
// signs pass the gateway's signature check and reach the code behind it.
import { randomBytes as cryptoRandomBytes } from "node:crypto";
import { Server, ServerCredentials, status } from "@grpc/grpc-js";
import { SigningKey, signatureKeyId } from "@phoenix/crypto";
import { federation } from "@phoenix/proto";
import { EventuallyTimeoutError, eventually } from "@phoenix/runtime/testing";
import { servicesWiring, TEST_LIMITS_ENV } from "../deployment.js";
import type { LogLevel } from "../homeserver.js";
import { freePorts, ProcessStartError, ServiceProcess } from "../service-process.js";
import { adminQueries, deleteNamespaceStreams, deleteStreams, dropDatabases } from "../storage.js";

/** The domain of the fake federation peer. */
export const PEER_DOMAIN = "peer.fuzz.test";

/** gRPC addresses of the target's services (`127.0.0.1:port`). */
export interface FuzzAddresses {
  auth: string;
  delivery: string;
  queue: string;
  /** The federation gateway's public (peer-facing) listener. */
  federation: string;
  /** The federation gateway's internal listener (FederationProxyService). */
  federationInternal: string;
  /** The operator admin listeners (phoenix.admin.v1), never the public ones: one per service serving them. */
  admin: { auth: string; federation: string; queue: string };
}

/** A running fuzz target. */
export interface FuzzTarget {
  readonly domain: string;
  readonly addresses: FuzzAddresses;
  /** The edge gateway's base URL. */
  readonly url: string;
  readonly processes: readonly ServiceProcess[];
  /** Postgres connection URL per service database. */
  readonly databaseUrls: Readonly<Record<string, string>>;
  readonly natsUrl: string;
  /** The bus namespace: every stream of this target ends in `_<namespace>`. */
  readonly namespace: string;
  /** The fake peer's signing key (its GetDomainKeys publishes the verifying key). */
  readonly peerKey: SigningKey;
  stop(): Promise<void>;
}

/** Thrown when the target cannot start (no `DATABASE_URL` / `NATS_URL`, a service failed). */
export class FuzzTargetError extends Error {
  override readonly name = "FuzzTargetError";
}

/** The gRPC message limit the services get (their default); oversized inputs go beyond it. */
export const TARGET_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

const SERVICES = ["auth", "delivery", "queue", "federation-gateway", "edge-gateway"] as const;

/** Starts the five services of `domain` and the fake peer; resolves once `/readyz` says ready. */
export async function startFuzzTarget(
  options: { domain?: string; logLevel?: LogLevel; timeoutMs?: number } = {},
): Promise<FuzzTarget> {
  const databaseUrl = process.env.DATABASE_URL;
  const natsUrl = process.env.NATS_URL;
  if (!databaseUrl || !natsUrl) throw new FuzzTargetError("DATABASE_URL and NATS_URL must be set");
  const domain = options.domain ?? "fuzz.test";
  const timeoutMs = options.timeoutMs ?? 180_000;
  const namespace = `fz${cryptoRandomBytes(5).toString("hex")}`;
  const peerKey = SigningKey.generate();
  const peer = await startFakePeer(peerKey);
  const [auth, delivery, queue, fed, fedInternal, http, authAdmin, fedAdmin, queueAdmin] = (await freePorts(
    9,
  )) as [number, number, number, number, number, number, number, number, number];
  const wiring = servicesWiring({
    domain,
    databaseUrl,
    natsUrl,
    namespace,
    ports: { auth, delivery, queue, federation: fed, federationInternal: fedInternal, http },
    logLevel: options.logLevel ?? "warn",
    env: {
      ...TEST_LIMITS_ENV,
      FEDERATION_PEERS: `${PEER_DOMAIN}=127.0.0.1:${peer.port}`,
      FEDERATION_ALLOWED_DOMAINS: PEER_DOMAIN,
      // Limits stay out of the way so inputs reach the code behind them (a limit that answers
      // RESOURCE_EXHAUSTED would still be a proper status).
      FEDERATION_PEER_RATE: "1000000",
      AS_TARGET_RATE_PACKAGES_PER_HOUR: "1000000",
      AS_CALLER_RATE_PROFILE_PER_MINUTE: "1000000",
    },
  });
  // The admin APIs are fuzzed on their own listeners, with an operator key configured, so their
  // authentication is what the inputs meet (on the public ports they do not exist).
  const operatorKeys = `fuzz:${Buffer.from(SigningKey.generate().publicKey).toString("base64url")}`;
  const withAdmin = (env: Record<string, string>, port: number) => ({
    ...env,
    ADMIN_GRPC_PORT: String(port),
    ADMIN_OPERATOR_KEYS: operatorKeys,
  });
  wiring.env.auth = withAdmin(wiring.env.auth, authAdmin);
  wiring.env["federation-gateway"] = withAdmin(wiring.env["federation-gateway"], fedAdmin);
  wiring.env.queue = withAdmin(wiring.env.queue, queueAdmin);
  const ports = { auth, delivery, queue, "federation-gateway": fed, "edge-gateway": http };
  const processes: ServiceProcess[] = [];
  const cleanUp = async (): Promise<void> => {
    await Promise.all(processes.map((p) => p.stop()));
    peer.server.forceShutdown();
    await dropDatabases(databaseUrl, wiring.databases).catch(() => undefined);
    await deleteStreams(natsUrl, wiring.streams).catch(() => undefined);
    await deleteNamespaceStreams(natsUrl, [namespace]).catch(() => undefined);
  };
  try {
    await adminQueries(
      databaseUrl,
      wiring.databases.map((name) => `CREATE DATABASE "${name}"`),
    );
    for (const service of SERVICES) {
      processes.push(
        ServiceProcess.spawn({
          name: service,
          entry: `services/${service}/src/main.ts`,
          env: wiring.env[service],
        }),
      );
    }
    await Promise.all(
      processes.map((p, i) =>
        p.waitForPort(ports[SERVICES[i] as (typeof SERVICES)[number]], { what: "its listener", timeoutMs }),
      ),
    );
    await waitReady(wiring.url, processes, timeoutMs);
  } catch (error) {
    await cleanUp();
    throw error;
  }
  const address = (port: number) => `127.0.0.1:${port}`;
  const databaseUrls: Record<string, string> = {};
  for (const name of wiring.databases) {
    const url = new URL(databaseUrl);
    url.pathname = `/${name}`;
    databaseUrls[name.slice(namespace.length + 1)] = url.toString();
  }
  return {
    domain,
    url: wiring.url,
    addresses: {
      auth: address(auth),
      delivery: address(delivery),
      queue: address(queue),
      federation: address(fed),
      federationInternal: address(fedInternal),
      admin: { auth: address(authAdmin), federation: address(fedAdmin), queue: address(queueAdmin) },
    },
    processes,
    databaseUrls,
    natsUrl,
    namespace,
    peerKey,
    stop: cleanUp,
  };
}

async function waitReady(
  url: string,
  processes: readonly ServiceProcess[],
  timeoutMs: number,
): Promise<void> {
  try {
    await eventually(
      async () => {
        const dead = processes.find((p) => !p.running);
        if (dead) throw dead.startError("exited while the fuzz target was starting");
        return fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5000) })
          .then((r) => r.status === 200)
          .catch(() => false);
      },
      { timeoutMs, intervalMs: 200 },
    );
  } catch (error) {
    if (!(error instanceof EventuallyTimeoutError)) throw error;
    throw new ProcessStartError(`${url}/readyz never answered 200`);
  }
}

/** A gRPC server answering GetDomainKeys for {@link PEER_DOMAIN} with `key`; nothing else. */
async function startFakePeer(key: SigningKey): Promise<{ server: Server; port: number }> {
  const server = new Server();
  const now = Date.now();
  const unimplemented = (_call: unknown, callback: (error: { code: number; details: string }) => void) =>
    callback({ code: status.UNIMPLEMENTED, details: "fake peer" });
  server.addService(federation.FederationServiceService, {
    getDomainKeys: (
      _call: unknown,
      callback: (error: null, response: federation.GetDomainKeysResponse) => void,
    ) =>
      callback(null, {
        domain: PEER_DOMAIN,
        keys: [
          {
            keyId: signatureKeyId(key.verifyingKey),
            publicKey: key.publicKey,
            notBefore: new Date(now - 3_600_000),
            notAfter: new Date(now + 86_400_000),
          },
        ],
      }),
    deliverFanOut: unimplemented,
    reportQueueDeleted: unimplemented,
    forward: unimplemented,
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  return { server, port };
}
