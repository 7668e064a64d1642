import type { Logger } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import type { Database } from "../db/types.js";
import type { TestDatabase } from "./test-database.js";

/**
 * What one SQL statement costs against the P4 budget (one read + one write per client request):
 * `control` is a transaction's BEGIN/COMMIT/ROLLBACK/SAVEPOINT; `infra` is work of the embedded
 * bus (NATS in deployments) or of the outbox relay, which runs after the request's commit.
 */
export type QueryKind = "read" | "write" | "control" | "infra";

/** One statement a service ran through the counted handle. */
export interface CountedQuery {
  readonly kind: QueryKind;
  readonly sql: string;
}

/** Reads and writes of one client request, and the statements behind them. */
export interface QueryTally {
  readonly reads: number;
  readonly writes: number;
  /** Of those, statements on the shared rate-limit buckets (`phoenix_rate_limit`). */
  readonly rateLimit: number;
  /** Of those, replay-protection claims (`phoenix_runtime.seen_requests`). */
  readonly replay: number;
  /** The read and write statements, in order (for a failing assertion's message). */
  readonly statements: readonly string[];
}

const CONTROL = new Set(["begin", "commit", "rollback", "savepoint", "release", "start", "set"]);

/**
 * Classifies a statement: SELECT (also `SELECT … FOR UPDATE`) is a `read`; INSERT (also
 * `ON CONFLICT`), UPDATE (also `RETURNING`) and DELETE are one `write` each, also inside a `WITH`.
 * Statements on the embedded bus's tables, and the outbox relay's reads and deletes, are `infra`
 * (the request's own outbox insert is a write), as is the rate limiter's once-a-minute sweep.
 */
export function classifyStatement(sql: string): QueryKind {
  const text = sql.trim().toLowerCase();
  const first = /^[a-z]+/.exec(text)?.[0] ?? "";
  if (CONTROL.has(first)) return "control";
  if (text.includes('"phoenix_bus".')) return "infra";
  if (
    text.includes('"phoenix_runtime"."outbox"') &&
    !/insert\s+into\s+"phoenix_runtime"\."outbox"/.test(text)
  )
    return "infra";
  // The rate limiter's sweep of refilled buckets: at most once a minute, whatever the request.
  if (first === "delete" && text.includes('"phoenix_rate_limit"."buckets"')) return "infra";
  if (first === "insert" || first === "update" || first === "delete") return "write";
  if (first === "with" && /\b(insert\s+into|update\s+"|delete\s+from)/.test(text)) return "write";
  return "read";
}

/**
 * Test-only: a view of `database` whose drizzle handle reports every statement it runs (through
 * drizzle's logger) to the returned counter. Hand `counter.database` to the module under test;
 * production code never gets a logger, so counting costs nothing outside tests. Statements the
 * module runs outside drizzle's main handle (session advisory locks of `tryWithLock`) are not seen.
 */
export function countQueries<TSchema extends Record<string, unknown>>(
  database: TestDatabase<TSchema>,
): QueryCounter<TSchema> {
  return new QueryCounter(database);
}

/** Records the statements run through `database.db`; see `countQueries`. */
export class QueryCounter<TSchema extends Record<string, unknown> = Record<string, never>> {
  /** The counted view: same pool and schema as the wrapped database, plus the logger. */
  readonly database: TestDatabase<TSchema>;
  #log: CountedQuery[] = [];

  constructor(inner: TestDatabase<TSchema>) {
    const logger: Logger = {
      logQuery: (sql) => {
        this.#log.push({ kind: classifyStatement(sql), sql });
      },
    };
    const handle = inner.db as unknown as { $client: never; _: { fullSchema?: TSchema } };
    const schema = handle._.fullSchema;
    const db = drizzle({
      client: handle.$client,
      logger,
      ...(schema && Object.keys(schema).length > 0 ? { schema } : {}),
    }) as unknown as Database<TSchema>;
    this.database = { ...inner, db };
  }

  /** Every statement recorded so far. */
  get queries(): readonly CountedQuery[] {
    return this.#log;
  }

  /**
   * Runs `call` (one client request, awaited to its response) and returns the reads and writes
   * the service ran meanwhile. Calls must not overlap, and nothing else may use the service.
   */
  async measure(call: () => Promise<unknown>): Promise<QueryTally> {
    const start = this.#log.length;
    await call();
    const statements = this.#log
      .slice(start)
      .filter((query) => query.kind === "read" || query.kind === "write");
    return {
      reads: statements.filter((query) => query.kind === "read").length,
      writes: statements.filter((query) => query.kind === "write").length,
      rateLimit: statements.filter((query) => query.sql.includes("phoenix_rate_limit")).length,
      replay: statements.filter((query) => query.sql.includes('"seen_requests"')).length,
      statements: statements.map((query) => `${query.kind}: ${query.sql}`),
    };
  }
}
