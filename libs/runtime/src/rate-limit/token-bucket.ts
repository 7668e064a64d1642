/** The state of one token bucket: tokens left at time `at` (ms since the epoch). */
export interface TokenBucket {
  tokens: number;
  at: number;
}

/** What one take did: the bucket to keep, and the milliseconds until a token is free (0: taken). */
export interface TokenTake {
  bucket: TokenBucket;
  waitMs: number;
}

/**
 * Takes one token from `bucket` (undefined: a fresh, full bucket) of `capacity` tokens refilled
 * evenly over `periodMs`. Pure, so the bucket can live in memory or in a database row.
 */
export function takeToken(
  bucket: TokenBucket | undefined,
  capacity: number,
  periodMs: number,
  now: number,
): TokenTake {
  const rate = capacity / periodMs;
  const start = bucket ?? { tokens: capacity, at: now };
  const tokens = Math.min(capacity, start.tokens + Math.max(0, now - start.at) * rate);
  if (tokens >= 1) return { bucket: { tokens: tokens - 1, at: now }, waitMs: 0 };
  const waitMs = rate > 0 ? Math.ceil((1 - tokens) / rate) : Number.POSITIVE_INFINITY;
  return { bucket: { tokens, at: now }, waitMs };
}

/** Settings of a {@link TokenBucketLimiter}. */
export interface TokenBucketOptions {
  /** Tokens a full bucket holds (the burst). */
  capacity: number;
  /** Milliseconds to refill an empty bucket completely. */
  periodMs: number;
  /** Buckets kept at most (default 100 000); full buckets go first, then the least recently used. */
  maxKeys?: number;
  /** Clock in ms (tests inject one; default `Date.now`). */
  now?: () => number;
}

/**
 * A token bucket per key (a caller address, a token hash), in memory and per replica. Memory
 * stays bounded: beyond `maxKeys`, buckets that have refilled (indistinguishable from a fresh
 * one) are dropped, and if none has, the least recently used one.
 */
export class TokenBucketLimiter {
  private readonly buckets = new Map<string, TokenBucket>();
  readonly capacity: number;
  readonly periodMs: number;
  private readonly maxKeys: number;
  private readonly clock: () => number;

  constructor(options: TokenBucketOptions) {
    this.capacity = options.capacity;
    this.periodMs = options.periodMs;
    this.maxKeys = options.maxKeys ?? 100_000;
    this.clock = options.now ?? Date.now;
  }

  /** Takes one token for `key` at `now` (default: the clock); 0 when allowed, else ms to wait. */
  take(key: string, now: number = this.clock()): number {
    const previous = this.buckets.get(key);
    if (previous === undefined && this.buckets.size >= this.maxKeys) this.evict(now);
    const { bucket, waitMs } = takeToken(previous, this.capacity, this.periodMs, now);
    // Re-inserting moves the key to the end: the first key is the least recently used.
    this.buckets.delete(key);
    this.buckets.set(key, bucket);
    return waitMs;
  }

  /** Number of buckets held. */
  get size(): number {
    return this.buckets.size;
  }

  private evict(now: number): void {
    const rate = this.capacity / this.periodMs;
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + Math.max(0, now - bucket.at) * rate >= this.capacity) this.buckets.delete(key);
    }
    while (this.buckets.size >= this.maxKeys) {
      const oldest = this.buckets.keys().next();
      if (oldest.done) break;
      this.buckets.delete(oldest.value);
    }
  }
}
