import { setTimeout as sleep } from "node:timers/promises";
import type { Http2OriginOptions } from "./http2-client.js";
import { ProviderUnreachableError } from "./http2-client.js";

/** How often and how long a push provider's temporary refusals (429, 5xx) are retried. */
export interface RetryPolicy {
  /** Attempts in all, the first included (default 3). */
  attempts?: number;
  /** Delay before the first retry, doubled for each further one (default 1 s). */
  baseDelayMs?: number;
  /**
   * Longest wait before a retry (default 60 s): a Retry-After beyond it gives up at once, since
   * the next message of the queue brings a new push anyway.
   */
  maxDelayMs?: number;
  /** Waits (tests record the delays instead). */
  sleep?: (ms: number) => Promise<unknown>;
}

/** One attempt's result: done, or try again (after `retryAfterMs` when the provider said so). */
export type Attempt<T> = { done: T } | { retry: string; retryAfterMs?: number };

/** The provider kept refusing (or asked to wait longer than the policy allows). */
export class PushRetryError extends Error {
  override readonly name = "PushRetryError";
}

/**
 * Runs `attempt` until it is done, with bounded exponential backoff (or the provider's
 * Retry-After) between attempts. An unreachable provider counts as a temporary refusal.
 */
export async function withRetries<T>(policy: RetryPolicy, attempt: () => Promise<Attempt<T>>): Promise<T> {
  const attempts = policy.attempts ?? 3;
  const base = policy.baseDelayMs ?? 1000;
  const max = policy.maxDelayMs ?? 60_000;
  const wait = policy.sleep ?? sleep;
  let reason = "no attempt";
  for (let n = 0; n < attempts; n++) {
    let outcome: Attempt<T>;
    try {
      outcome = await attempt();
    } catch (error) {
      if (!(error instanceof ProviderUnreachableError)) throw error;
      outcome = { retry: error.message };
    }
    if ("done" in outcome) return outcome.done;
    reason = outcome.retry;
    if (n + 1 === attempts) break;
    const delay = outcome.retryAfterMs ?? Math.min(base * 2 ** n, max);
    if (delay > max) throw new PushRetryError(`${reason}; retry after ${delay} ms is beyond ${max} ms`);
    await wait(delay);
  }
  throw new PushRetryError(`${reason} (after ${attempts} attempts)`);
}

/** The delay a Retry-After header asks for (seconds or an HTTP date), if it is readable. */
export function retryAfterMs(header: string | string[] | undefined, now: number): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.trim() === "") return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** At most `limit` pushes of one provider in flight at once; the rest wait their turn. */
export class ConcurrencyLimit {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await task();
    } finally {
      // The slot passes straight to the next waiter (active stays counted for it).
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

/** What every push provider takes besides its credentials (APNs, FCM). */
export interface ProviderOptions extends Http2OriginOptions {
  /** The provider's origin (`https://…`); a relay, a test's fake. Default: the provider's own. */
  origin?: string;
  /** How long the provider keeps an undelivered push (0: deliver now or never). */
  ttlMs?: number;
  retry?: RetryPolicy;
  /** Pushes in flight at once (default 100). */
  maxInFlight?: number;
  /** Clock in ms since the epoch (JWT `iat`, expirations). */
  now?: () => number;
}
