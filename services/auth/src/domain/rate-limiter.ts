import { rateLimited } from "./errors.js";

/** The state of one token bucket: tokens left at time `at` (ms). */
export interface TokenBucket {
  tokens: number;
  at: number;
}

/**
 * Takes one token from `bucket` (undefined: a fresh, full bucket) of `capacity` tokens refilled
 * evenly over `periodMs`: the bucket after the take, and the milliseconds until a token is free
 * (0: taken).
 */
export function takeToken(
  bucket: TokenBucket | undefined,
  capacity: number,
  periodMs: number,
  now: number,
): { bucket: TokenBucket; waitMs: number } {
  const rate = capacity / periodMs;
  const start = bucket ?? { tokens: capacity, at: now };
  const tokens = Math.min(capacity, start.tokens + Math.max(0, now - start.at) * rate);
  if (tokens < 1) return { bucket: { tokens, at: now }, waitMs: Math.ceil((1 - tokens) / rate) };
  return { bucket: { tokens: tokens - 1, at: now }, waitMs: 0 };
}

/**
 * A fixed-capacity token bucket per key (e.g. per caller): `capacity` requests, refilled
 * continuously over `periodMs`. In memory and per replica; idle buckets are forgotten so the map
 * stays bounded.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly capacity: number,
    private readonly periodMs: number,
    private readonly maxKeys = 100_000,
  ) {}

  /** Takes one token for `key`; returns 0 when allowed, else the milliseconds until one is free. */
  take(key: string, now: number): number {
    const { bucket, waitMs } = takeToken(this.buckets.get(key), this.capacity, this.periodMs, now);
    // Re-inserting moves the key to the end: the first key is the least recently used.
    this.buckets.delete(key);
    this.buckets.set(key, bucket);
    if (this.buckets.size > this.maxKeys) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
    return waitMs;
  }
}

/**
 * A configured rate limit: `capacity` requests per `periodMs` per key, named after its
 * configuration variable so a refused caller (and the operator reading the log) knows which limit
 * it hit. A capacity of 0 disables the limit.
 */
export class NamedRateLimit {
  private readonly limiter: RateLimiter | undefined;

  constructor(
    /** What is limited, per what: `handle lookups per caller`. */
    readonly subject: string,
    /** The configuration variable: `AS_RATE_CHECK_HANDLE_PER_MINUTE`. */
    readonly variable: string,
    readonly capacity: number,
    readonly periodMs: number,
  ) {
    this.limiter = capacity > 0 ? new RateLimiter(capacity, periodMs) : undefined;
  }

  /** Takes one request for `key`; RESOURCE_EXHAUSTED (reason RATE_LIMIT) naming the limit if over it. */
  take(key: string, now: number): void {
    const wait = this.limiter?.take(key, now) ?? 0;
    if (wait > 0) throw this.refusal(wait);
  }

  /**
   * Takes one request from a bucket kept elsewhere (a database row, shared by all replicas):
   * the bucket to store, or RESOURCE_EXHAUSTED naming the limit.
   */
  takeFrom(bucket: TokenBucket | undefined, now: number): TokenBucket | undefined {
    if (this.capacity === 0) return bucket;
    const taken = takeToken(bucket, this.capacity, this.periodMs, now);
    if (taken.waitMs > 0) throw this.refusal(taken.waitMs);
    return taken.bucket;
  }

  private refusal(waitMs: number) {
    return rateLimited(
      `${this.subject} (${this.variable}=${this.capacity} per ${periodName(this.periodMs)})`,
      waitMs,
    );
  }
}

function periodName(ms: number): string {
  if (ms === 3_600_000) return "hour";
  if (ms === 60_000) return "minute";
  return `${ms} ms`;
}
