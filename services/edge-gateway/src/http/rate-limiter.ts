/** Token-bucket settings: `ratePerSecond` tokens refill per second up to `burst`. */
export interface RateLimitOptions {
  ratePerSecond: number;
  burst: number;
  /** Buckets kept at most; idle full buckets are dropped first (default 100 000). */
  maxKeys?: number;
  /** Clock in ms (tests). */
  now?: () => number;
}

/** What `take` decided: allowed, or refused with the seconds until a token is back. */
export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  updated: number;
}

/**
 * A per-key (client IP) token bucket. Memory stays bounded: when `maxKeys` is reached, buckets
 * that have refilled completely (indistinguishable from a fresh one) are dropped, and if none has,
 * the oldest-updated bucket goes.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly rate: number;
  private readonly burst: number;
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor(options: RateLimitOptions) {
    this.rate = options.ratePerSecond;
    this.burst = Math.max(1, options.burst);
    this.maxKeys = options.maxKeys ?? 100_000;
    this.now = options.now ?? Date.now;
  }

  /** Takes one token for `key`. */
  take(key: string): RateDecision {
    const now = this.now();
    let bucket = this.buckets.get(key);
    if (bucket) {
      bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.updated) / 1000) * this.rate);
      bucket.updated = now;
      // Re-insert so Map order is least-recently-used first.
      this.buckets.delete(key);
    } else {
      if (this.buckets.size >= this.maxKeys) this.evict(now);
      bucket = { tokens: this.burst, updated: now };
    }
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true };
    }
    const missing = 1 - bucket.tokens;
    const seconds = this.rate > 0 ? Math.ceil(missing / this.rate) : 60;
    return { allowed: false, retryAfterSeconds: Math.max(1, seconds) };
  }

  /** Number of buckets held. */
  get size(): number {
    return this.buckets.size;
  }

  private evict(now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + ((now - bucket.updated) / 1000) * this.rate >= this.burst) this.buckets.delete(key);
    }
    if (this.buckets.size >= this.maxKeys) {
      const oldest = this.buckets.keys().next();
      if (!oldest.done) this.buckets.delete(oldest.value);
    }
  }
}
