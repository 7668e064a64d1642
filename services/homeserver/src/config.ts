import { parseArgs } from "node:util";
import { busConfig } from "@phoenix/runtime/bus";
import {
  type Env,
  envDomain,
  envEnum,
  envPort,
  envSecretKey,
  envString,
  LOG_LEVELS,
  serviceConfig,
} from "@phoenix/runtime/config";
import { databaseConfig } from "@phoenix/runtime/db";
import type { z } from "zod";

/**
 * The homeserver's own environment. Everything else (`AS_*`, `DS_*`, `QS_*`, `FEDERATION_*`,
 * `EDGE_*`) is handed to the embedded service it belongs to, as documented in that service.
 */
export const homeserverConfigSchema = serviceConfig({
  serviceName: "homeserver",
  // The homeserver's own gRPC listener answers grpc.health.v1 only; any free port by default.
  grpcPort: 0,
  metricsPort: 9460,
}).extend({
  ...databaseConfig.shape,
  ...busConfig.shape,
  /** The homeserver's domain: user ids, group ids and queue configs end in it. */
  HOMESERVER_DOMAIN: envDomain({ default: "localhost" }),
  /** Where PGlite databases and generated keys live (created on first start). */
  DATA_DIR: envString({ default: "./.data" }),
  /**
   * Seals the embedded bus's stored messages (32 bytes, hex or base64). Unset: a key generated
   * into `$DATA_DIR/bus/payload.key`. Not used with NATS_URL.
   */
  BUS_PAYLOAD_KEY: envSecretKey({ optional: true }),
  /** The public REST/WebSocket listener (the edge gateway). */
  HTTP_HOST: envString({ default: "127.0.0.1" }),
  HTTP_PORT: envPort({ default: 8080 }),
  /** Log level of the embedded services (the homeserver's own lines use LOG_LEVEL). */
  SERVICES_LOG_LEVEL: envEnum(LOG_LEVELS, { default: "warn" }),
  /**
   * With DATABASE_URL: each service's database is `<prefix><service>` on that server
   * (`phoenix_auth`, `phoenix_delivery`, `phoenix_queue`, `phoenix_federation`), created if missing.
   */
  HOMESERVER_DATABASE_PREFIX: envString({
    default: "phoenix_",
    pattern: /^[a-z_][a-z0-9_]{0,40}$/,
    patternHint: "must be lower-case letters, digits and _",
  }),
  /**
   * Keeps several homeservers on one NATS apart: subjects get the prefix `<namespace>.` and
   * stream names the suffix `_<namespace>`. Unset: the deployment defaults (`PHOENIX_FANOUT`, …).
   */
  HOMESERVER_BUS_NAMESPACE: envString({
    optional: true,
    pattern: /^[a-z0-9_-]{1,32}$/,
    patternHint: "must be 1-32 lower-case letters, digits, _ and -",
  }),
  /** The federation gateway's public listener (server-to-server gRPC); 0: any free port. */
  FEDERATION_HOST: envString({ default: "127.0.0.1" }),
  FEDERATION_PORT: envPort({ default: 0 }),
});

/** The parsed homeserver configuration. */
export type HomeserverConfig = z.output<typeof homeserverConfigSchema>;

/** The command line, as documented by {@link HELP}. */
export interface CommandLine {
  help: boolean;
  /** The environment the flags stand for (a flag wins over the variable). */
  env: Env;
}

/** An unknown flag or a flag without its value. */
export class CommandLineError extends Error {
  override readonly name = "CommandLineError";
}

/** What `--help` prints. */
export const HELP = `Phoenix homeserver: AS, DS, QS, federation gateway and edge gateway in one process.

Usage: npm start -- [options]
       node --conditions=source --import tsx services/homeserver/src/main.ts [options]

Options (each also settable by the variable in brackets; the flag wins):
  --domain <name>     the homeserver's domain            [HOMESERVER_DOMAIN]  default localhost
  --host <address>    public REST/WebSocket listen host  [HTTP_HOST]          default 127.0.0.1
  --port <port>       public REST/WebSocket listen port  [HTTP_PORT]          default 8080
  --data-dir <path>   databases and generated keys       [DATA_DIR]           default ./.data
  --tls-cert <file>   PEM certificate chain: serve HTTPS [EDGE_TLS_CERT_FILE] (TLS 1.3 only)
  --tls-key <file>    its PEM private key                [EDGE_TLS_KEY_FILE]  both or neither
  -h, --help          print this help

The domain must be a fully qualified name (chat.example.org); localhost is for development.
Without --tls-cert/--tls-key the listener speaks plain HTTP: put a TLS-terminating proxy in
front, or keep it on loopback.

Storage: PGlite databases under <data-dir>/pglite and the embedded bus, unless
  DATABASE_URL=postgres://user@host:5432/postgres   one database per service on that server
                                                      (phoenix_auth, phoenix_delivery, ...)
  NATS_URL=nats://127.0.0.1:4222                     NATS JetStream instead of the embedded bus

More variables (LOG_LEVEL, SERVICES_LOG_LEVEL, AS_*, DS_*, QS_*, FEDERATION_*, EDGE_*):
see docs/running.md.
`;

/** Parses the flags into the environment variables they set. */
export function parseCommandLine(argv: readonly string[]): CommandLine {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    throw new CommandLineError(error instanceof Error ? error.message : String(error));
  }
  const { values } = parsed;
  const env: Record<string, string> = {};
  if (values.domain !== undefined) env.HOMESERVER_DOMAIN = values.domain;
  if (values.host !== undefined) env.HTTP_HOST = values.host;
  if (values.port !== undefined) env.HTTP_PORT = values.port;
  if (values["data-dir"] !== undefined) env.DATA_DIR = values["data-dir"];
  if (values["tls-cert"] !== undefined) env.EDGE_TLS_CERT_FILE = values["tls-cert"];
  if (values["tls-key"] !== undefined) env.EDGE_TLS_KEY_FILE = values["tls-key"];
  return { help: values.help === true, env };
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      domain: { type: "string" },
      host: { type: "string" },
      port: { type: "string" },
      "data-dir": { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
}
