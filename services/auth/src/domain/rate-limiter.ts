import { rateLimited } from "./errors.js";

/**
 * A fixed-capacity token bucket per key (e.g. per target queue): `capacity` requests, refilled
 * continuously over `periodMs`. In memory and per replica; idle buckets are forgotten so the map
 * stays bounded.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly capacity: number,
    private readonly periodMs: number,
    private readonly maxKeys = 100_000,
  ) {}

  /** Takes one token for `key`; returns 0 when allowed, else the milliseconds until one is free. */
  take(key: string, now: number): number {
    const rate = this.capacity / this.periodMs;
    const bucket = this.buckets.get(key) ?? { tokens: this.capacity, at: now };
    const tokens = Math.min(this.capacity, bucket.tokens + (now - bucket.at) * rate);
    if (tokens < 1) {
      this.buckets.set(key, { tokens, at: now });
      return Math.ceil((1 - tokens) / rate);
    }
    this.buckets.delete(key);
    this.buckets.set(key, { tokens: tokens - 1, at: now });
    if (this.buckets.size > this.maxKeys) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
    return 0;
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
    if (wait > 0) {
      throw rateLimited(
        `${this.subject} (${this.variable}=${this.capacity} per ${periodName(this.periodMs)})`,
        wait,
      );
    }
  }
}

function periodName(ms: number): string {
  if (ms === 3_600_000) return "hour";
  if (ms === 60_000) return "minute";
  return `${ms} ms`;
}
