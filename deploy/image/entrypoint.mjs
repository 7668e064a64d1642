#!/usr/bin/env node
// The Phoenix image's one entrypoint: `entrypoint.mjs COMMAND [ARGS...]` runs one compiled
// process of the repository in this Node process (so Node is PID 1 and gets SIGTERM itself).
// Plain JavaScript: it runs before and without any build step, from /app/deploy/image/.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const APP = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const PROBE_TIMEOUT_MS = 2000;

/**
 * The long-running commands and what `probe` (no arguments) checks for each: GET /healthz on the
 * port of `portVariable` (default `port`) — the process is alive. For the gRPC services that is
 * their metrics port, where /healthz answers even while Postgres or NATS is down (the service is
 * then alive but not ready: /readyz and gRPC health say so; a restart would not help).
 */
const SERVICES = {
  auth: { main: "services/auth/dist/main.js", probe: "http", portVariable: "METRICS_PORT", port: 9461 },
  delivery: {
    main: "services/delivery/dist/main.js",
    probe: "http",
    portVariable: "METRICS_PORT",
    port: 9466,
  },
  queue: { main: "services/queue/dist/main.js", probe: "http", portVariable: "METRICS_PORT", port: 9467 },
  "federation-gateway": {
    main: "services/federation-gateway/dist/main.js",
    probe: "http",
    portVariable: "METRICS_PORT",
    port: 9468,
  },
  "edge-gateway": {
    main: "services/edge-gateway/dist/main.js",
    probe: "http",
    portVariable: "HTTP_PORT",
    port: 8080,
  },
  homeserver: {
    main: "services/homeserver/dist/main.js",
    probe: "http",
    portVariable: "HTTP_PORT",
    port: 8080,
    portFlag: "--port",
  },
};

const HELP = `Phoenix homeserver image. Usage: COMMAND [ARGS...]

Commands:
  homeserver [FLAGS]    all-in-one homeserver (default; HTTP 8080, data in /data)
                        flags: --domain NAME --host ADDR --port N --data-dir DIR (--help)
  auth                  Authentication Service (gRPC 50051, metrics 9461)
  delivery              Delivery Service (gRPC 50052, metrics 9466)
  queue                 Queuing Service (gRPC 50053, metrics 9467)
  federation-gateway    federation gateway (public gRPC 8443, internal 50055, metrics 9468)
  edge-gateway          REST/WebSocket edge gateway (HTTP 8080, metrics 9460)
  migrate               apply the database migrations of AUTH_DATABASE_URL, DELIVERY_DATABASE_URL,
                        QUEUE_DATABASE_URL, FEDERATION_DATABASE_URL (at least one), then exit
  phoenix ARGS...       the phoenix command-line client (store under $HOME/.phoenix, HOME=/data)
  phoenix-admin ARGS... the operator CLI on the AS admin listener (docs/admin.md); with the
                        all-in-one: phoenix-admin --data-dir /data COMMAND
  probe grpc PORT [SERVICE]  exit 0 iff grpc.health.v1 Check on 127.0.0.1:PORT is SERVING
  probe http PORT PATH  exit 0 iff GET http://127.0.0.1:PORT/PATH answers 2xx
  probe                 probe what PID 1 runs on its port (the HEALTHCHECK)
  help                  this list

The services take their configuration from environment variables (docs/deployment.md); the
image listens on 0.0.0.0 by default (GRPC_HOST, METRICS_HOST, HTTP_HOST, FEDERATION_INTERNAL_HOST).
`;

/** Runs a compiled entry (`main` relative to /app) as if it were `node main args...`. */
async function runMain(main, args) {
  const file = join(APP, main);
  process.argv = [process.argv[0], file, ...args];
  await import(pathToFileURL(file).href);
}

/** Ends a probe: a short reason on stderr when it failed. */
function finishProbe(healthy, reason) {
  (healthy ? process.stdout : process.stderr).write(`probe: ${reason}\n`);
  process.exit(healthy ? 0 : 1);
}

function parsePort(value) {
  const port = Number(value);
  if (!/^\d+$/.test(value ?? "") || port < 1 || port > 65535)
    usage(`probe: not a port: ${value ?? "(none)"}`);
  return port;
}

async function probeGrpc(port, service = "") {
  // Loaded only here: gRPC takes a moment to import, and probes should be quick.
  const grpc = await import("@grpc/grpc-js");
  const { service: healthService } = await import("grpc-health-check");
  const Health = grpc.makeClientConstructor(healthService, "grpc.health.v1.Health");
  const client = new Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  client.Check({ service }, { deadline: Date.now() + PROBE_TIMEOUT_MS - 200 }, (error, response) => {
    client.close();
    // grpc-js appends a multi-line "Resolution note" to connection errors: keep the first part.
    const reason = (error?.details || error?.message || "").replace(/\s*Resolution note:[\s\S]*$/, "");
    if (error) finishProbe(false, `grpc 127.0.0.1:${port}: ${reason}`);
    const status = response?.status ?? "UNKNOWN";
    finishProbe(status === "SERVING", `grpc 127.0.0.1:${port} "${service}": ${status}`);
  });
}

async function probeHttp(port, path) {
  const url = `http://127.0.0.1:${port}/${path.replace(/^\/+/, "")}`;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS - 200) });
    await response.body?.cancel();
    finishProbe(response.ok, `GET ${url}: ${response.status}`);
  } catch (error) {
    finishProbe(false, `GET ${url}: ${error.cause?.message ?? error.message}`);
  }
}

/** The argv and environment of the process running this entrypoint's `command` (PID 1 first). */
function findServiceProcess() {
  const pids = ["1", ...readdirSync("/proc").filter((name) => /^\d+$/.test(name) && name !== "1")];
  for (const pid of pids) {
    let argv;
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    } catch {
      continue;
    }
    const at = argv.findIndex((arg) => arg.endsWith("/entrypoint.mjs"));
    if (at < 0) continue;
    const command = argv[at + 1] ?? "homeserver";
    if (command === "probe") continue;
    let env = process.env;
    try {
      const pairs = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").filter(Boolean);
      env = Object.fromEntries(
        pairs.map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]),
      );
    } catch {
      // Not readable (another user): the container's environment is ours too.
    }
    return { command, args: argv.slice(at + 2), env };
  }
  return undefined;
}

/** `probe` without arguments: the HEALTHCHECK, whatever command the container runs. */
async function probeDefault() {
  const found = findServiceProcess();
  if (!found) finishProbe(false, "no Phoenix process found in /proc");
  const service = SERVICES[found.command];
  if (!service) finishProbe(true, `${found.command} has nothing to probe`);
  let port = Number(found.env[service.portVariable] || service.port);
  const flagAt = service.portFlag ? found.args.indexOf(service.portFlag) : -1;
  if (flagAt >= 0) port = Number(found.args[flagAt + 1]);
  const inline = service.portFlag && found.args.find((arg) => arg.startsWith(`${service.portFlag}=`));
  if (inline) port = Number(inline.slice(service.portFlag.length + 1));
  if (service.probe === "grpc") await probeGrpc(port);
  else await probeHttp(port, "/healthz");
}

async function probe(args) {
  // Whatever hangs (a listener that accepts but never answers), the probe answers in time.
  setTimeout(() => finishProbe(false, `no answer within ${PROBE_TIMEOUT_MS} ms`), PROBE_TIMEOUT_MS).unref();
  const [kind, port, extra] = args;
  if (kind === undefined) return probeDefault();
  if (kind === "grpc") return probeGrpc(parsePort(port), extra ?? "");
  if (kind === "http") {
    if (extra === undefined) usage("probe http needs PORT and PATH");
    return probeHttp(parsePort(port), extra);
  }
  usage(`probe: unknown kind "${kind}" (grpc or http)`);
}

function usage(message) {
  process.stderr.write(`${message}\n\n${HELP}`);
  process.exit(2);
}

/** Sets `name` unless the environment already has a non-empty value. */
function defaultEnv(name, value) {
  if (!process.env[name]) process.env[name] = value;
}

const [command = "homeserver", ...args] = process.argv.slice(2);
switch (command) {
  case "help":
  case "--help":
  case "-h":
    process.stdout.write(HELP);
    break;
  case "homeserver":
    // The image's data volume; the --data-dir flag still wins.
    defaultEnv("DATA_DIR", "/data");
    await runMain(SERVICES.homeserver.main, args);
    break;
  case "auth":
  case "delivery":
  case "queue":
  case "federation-gateway":
  case "edge-gateway":
    await runMain(SERVICES[command].main, args);
    break;
  case "migrate":
    // PID 1 ignores signals it has no handler for: stop a migration when asked (its transaction
    // rolls back, the advisory lock goes with the connection).
    process.on("SIGTERM", () => process.exit(143));
    process.on("SIGINT", () => process.exit(130));
    await runMain("services/homeserver/dist/migrate-main.js", args);
    break;
  case "phoenix":
    // Without a passwd entry HOME is "/": keep the client's store on the data volume instead.
    if (!process.env.HOME || process.env.HOME === "/") process.env.HOME = "/data";
    await runMain("libs/client/dist/cli/main.js", args);
    break;
  case "phoenix-admin":
    await runMain("services/auth/dist/admin/cli/main.js", args);
    break;
  case "probe":
    await probe(args);
    break;
  default:
    usage(`unknown command "${command}"`);
}
