import type { Logger } from "../log/create-logger.js";

/** How {@link retryWithBackoff} spaces its attempts. */
export interface BackoffOptions {
  /** Pause after the first failure (default 200 ms); doubled after each further one. */
  initialDelayMs?: number;
  /** The longest pause between two attempts (default 5 s): an outage of any length is retried this often. */
  maxDelayMs?: number;
}

export interface RetryOptions extends BackoffOptions {
  /** What is being reached, for the log ("database", "bus"). */
  dependency: string;
  logger: Logger;
  /** Stops retrying: the pending wait ends and the call rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Errors worth waiting out (default: every error); any other is thrown at once. */
  retryable?: (error: unknown) => boolean;
}

export const DEFAULT_INITIAL_DELAY_MS = 200;
export const DEFAULT_MAX_DELAY_MS = 5000;

/**
 * The pause after the `attempt`-th failure (1-based): `initialDelayMs · 2^(attempt-1)`, capped at
 * `maxDelayMs`, less up to a fifth at random so replicas that lost a dependency together do not
 * come back in lockstep.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const initial = options.initialDelayMs ?? DEFAULT_INITIAL_DELAY_MS;
  const max = Math.max(initial, options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS);
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  const delay = Math.min(max, initial * 2 ** exponent);
  return Math.round(delay * (1 - Math.random() * 0.2));
}

/**
 * Calls `attempt` until it resolves, pausing {@link backoffDelay} between failures and logging
 * each failure (warn, naming the dependency, the attempt number, the pause and the error's
 * message) and the eventual success after failures (info). Retries forever unless `signal`
 * aborts or an error is not `retryable`.
 */
export async function retryWithBackoff<T>(attempt: () => Promise<T>, options: RetryOptions): Promise<T> {
  const { dependency, logger, signal } = options;
  for (let failures = 0; ; ) {
    signal?.throwIfAborted();
    try {
      const value = await attempt();
      if (failures > 0) logger.info({ dependency, attempts: failures + 1 }, `${dependency} reachable`);
      return value;
    } catch (error) {
      if (options.retryable && !options.retryable(error)) throw error;
      failures += 1;
      const retryInMs = backoffDelay(failures, options);
      logger.warn(
        { dependency, attempt: failures, retryInMs, error: messageOf(error) },
        `${dependency} unreachable; retrying`,
      );
      await pause(retryInMs, signal);
    }
  }
}

/** Resolves after `ms`, or rejects with the signal's reason once it aborts. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** The innermost message of an error chain (drivers wrap the cause that names the problem). */
export function messageOf(error: unknown): string {
  let current = error;
  for (let depth = 0; depth < 5 && current instanceof Error && current.cause instanceof Error; depth++) {
    current = current.cause;
  }
  if (current instanceof AggregateError && current.errors[0] instanceof Error) current = current.errors[0];
  return current instanceof Error ? current.message || current.name : String(current);
}
