import type { PgTransactionConfig } from "drizzle-orm/pg-core";
import type { Database, Transaction } from "./types.js";

/** SQLSTATEs after which re-running the whole transaction is the documented remedy. */
const RETRYABLE_CODES = new Set(["40001", "40P01"]); // serialization_failure, deadlock_detected

export interface TransactionOptions extends PgTransactionConfig {
  /** Attempts in total before the last error is thrown (default 5). */
  maxAttempts?: number;
}

/**
 * Runs `fn` in a transaction and re-runs it when Postgres aborts it with a serialization failure
 * or a deadlock (bounded by `maxAttempts`, with a short growing pause). `fn` may therefore run
 * more than once: keep side effects other than database writes out of it.
 *
 * Inside `fn` use only `tx`. On PGlite (one connection) a query on the outer `db` waits for this
 * transaction to finish, so it would never return; on pg it would run outside the transaction.
 */
export async function transaction<T, TSchema extends Record<string, unknown> = Record<string, never>>(
  db: Database<TSchema>,
  fn: (tx: Transaction<TSchema>) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  const { maxAttempts = 5, ...config } = options;
  const txConfig = Object.keys(config).length > 0 ? config : undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction(fn, txConfig);
    } catch (error) {
      if (attempt >= maxAttempts || !isRetryable(error)) throw error;
      // Random pause so the conflicting transactions do not collide again in lockstep.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(200, 5 * 2 ** attempt)));
    }
  }
}

/** True for errors Postgres raises to ask for the transaction to be retried. */
export function isRetryable(error: unknown): boolean {
  return RETRYABLE_CODES.has(sqlState(error) ?? "");
}

/** The SQLSTATE of a driver error, looking through drizzle's wrapping. */
export function sqlState(error: unknown): string | undefined {
  let current = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") return code;
    current = current.cause;
  }
  return undefined;
}
