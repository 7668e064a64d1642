import { UnavailableError } from "../errors/rpc-errors.js";

/** Socket errors of a peer that cannot be reached or went away. */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/** SQLSTATEs of a server that is going away or not accepting connections (class 08: connection exception). */
const POSTGRES_GONE = new Set(["57P01", "57P02", "57P03"]);

/** node-postgres messages of a connection that died or could not be had. */
const PG_CONNECTION_MESSAGES = [
  "Connection terminated",
  "connection error and is not queryable",
  "timeout exceeded when trying to connect",
  "Client was closed and is not queryable",
  "Cannot use a pool after calling end on the pool",
];

/** Error names of the NATS client for a connection that is closed or cannot answer. */
const NATS_CONNECTION_ERRORS = new Set(["ClosedConnectionError", "ConnectionError", "NoRespondersError"]);

/** Which dependency an error says is unreachable, if it says so. */
export function unreachableDependency(
  error: unknown,
): "database" | "message bus" | "a dependency" | undefined {
  let network = false;
  let database = false;
  let current: unknown = error;
  for (let depth = 0; depth < 6 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    const name = current.name;
    if (name === "DatabaseOpenError" || name === "DatabaseUnavailableError") return "database";
    if (name === "DrizzleQueryError") database = true;
    if (typeof code === "string" && (code.startsWith("08") || POSTGRES_GONE.has(code))) return "database";
    if (
      PG_CONNECTION_MESSAGES.some((message) => current instanceof Error && current.message.includes(message))
    )
      return "database";
    if (NATS_CONNECTION_ERRORS.has(name)) return "message bus";
    if (typeof code === "string" && NETWORK_CODES.has(code)) network = true;
    if (current instanceof AggregateError && current.errors.some((inner) => unreachableDependency(inner)))
      network = true;
    current = current.cause;
  }
  if (!network) return undefined;
  return database ? "database" : "a dependency";
}

/**
 * The UNAVAILABLE a client should get for an error that says a dependency of the service
 * (database, message bus) cannot be reached — an outage, not a bug: a transaction it broke was
 * rolled back (or, if the connection died while committing, committed: requests carry ids, so
 * the retry is recognised), and retrying later succeeds. Undefined for any other error.
 */
export function dependencyUnavailable(error: unknown): UnavailableError | undefined {
  const dependency = unreachableDependency(error);
  if (dependency === undefined) return undefined;
  const what = dependency === "a dependency" ? "a dependency of the service is" : `the ${dependency} is`;
  return new UnavailableError(`${what} unreachable; retry later`, { cause: error });
}
