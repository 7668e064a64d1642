import { common } from "@phoenix/proto";
import { errorDetail } from "@phoenix/wire";
import { ResourceExhaustedError } from "../errors/rpc-errors.js";
import type { SharedRateLimits } from "./shared-rate-limits.js";
import { type TokenBucket, TokenBucketLimiter, takeToken } from "./token-bucket.js";

/** Optional settings of a {@link NamedRateLimit}. */
export interface NamedRateLimitOptions {
  /** Keys (callers) kept at most in memory (default 100 000). */
  maxKeys?: number;
  /** Clock in ms used when `take` is given no time (default `Date.now`). */
  now?: () => number;
}

/**
 * A configured rate limit: `capacity` requests per `periodMs` per key, refilled continuously,
 * named after its configuration variable so a refused caller (and the operator reading the log)
 * knows which limit it hit. A capacity of 0 (or less) disables it.
 */
export class NamedRateLimit {
  private readonly limiter: TokenBucketLimiter | undefined;

  constructor(
    /** What is limited, per what: `handle lookups per caller`. */
    readonly subject: string,
    /** The configuration variable: `AS_CALLER_RATE_CHECK_HANDLE_PER_MINUTE`. */
    readonly variable: string,
    readonly capacity: number,
    readonly periodMs: number,
    options: NamedRateLimitOptions = {},
  ) {
    this.limiter =
      capacity > 0
        ? new TokenBucketLimiter({
            capacity,
            periodMs,
            ...(options.maxKeys === undefined ? {} : { maxKeys: options.maxKeys }),
            ...(options.now === undefined ? {} : { now: options.now }),
          })
        : undefined;
  }

  /** Takes one request for `key`; throws RESOURCE_EXHAUSTED (reason RATE_LIMIT) naming the limit if over. */
  take(key: string, now?: number): void {
    const wait = this.limiter?.take(key, now) ?? 0;
    if (wait > 0) throw this.refusal(wait);
  }

  /**
   * Takes one request from a bucket kept elsewhere (a database row shared by all replicas): the
   * bucket to store, or RESOURCE_EXHAUSTED naming the limit. Disabled: the bucket unchanged.
   */
  takeFrom(bucket: TokenBucket | undefined, now: number): TokenBucket | undefined {
    if (this.capacity <= 0) return bucket;
    const taken = takeToken(bucket, this.capacity, this.periodMs, now);
    if (taken.waitMs > 0) throw this.refusal(taken.waitMs);
    return taken.bucket;
  }

  /**
   * Takes one request for `key` from the bucket kept in the service's database (`store`), shared
   * by every replica; throws RESOURCE_EXHAUSTED naming the limit if over. Disabled: nothing.
   */
  async takeShared(store: SharedRateLimits, key: string | Uint8Array, now: number): Promise<void> {
    if (this.capacity <= 0) return;
    const wait = await store.take(this.variable, this.capacity, this.periodMs, key, now);
    if (wait > 0) throw this.refusal(wait);
  }

  private refusal(waitMs: number): ResourceExhaustedError {
    return rateLimitExceeded(
      `${this.subject} (${this.variable}=${this.capacity} per ${periodName(this.periodMs)})`,
      waitMs,
    );
  }
}

/**
 * RESOURCE_EXHAUSTED for a rate limit: the message names `subject` and the wait, the
 * `phoenix.common.v1.ErrorDetail` carries reason RATE_LIMIT and the retry delay.
 */
export function rateLimitExceeded(subject: string, retryAfterMs: number): ResourceExhaustedError {
  const ms = Number.isFinite(retryAfterMs) ? Math.max(0, Math.ceil(retryAfterMs)) : 3_600_000;
  const detail: common.ErrorDetail = {
    reason: common.ErrorReason.ERROR_REASON_RATE_LIMIT,
    detail: {
      $case: "retry",
      value: { retryAfter: { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 } },
    },
  };
  return new ResourceExhaustedError(`${subject}: rate limit exceeded, retry in ${Math.ceil(ms / 1000)} s`, {
    details: [errorDetail(detail)],
  });
}

function periodName(ms: number): string {
  if (ms === 3_600_000) return "hour";
  if (ms === 60_000) return "minute";
  if (ms === 1_000) return "second";
  return `${ms / 1000} s`;
}
