import { PeerRateLimitedError, PeerRefusedError } from "./errors.js";

/** Which peer domains this homeserver federates with. */
export interface PolicyConfig {
  /** `allowlist`: only `allowed` domains; `open`: every domain except `denied`. */
  mode: "allowlist" | "open";
  allowed: readonly string[];
  /** Refused in both modes (a denylist entry wins over an allowlist entry). */
  denied: readonly string[];
}

/** The federation policy: decides per peer domain, in both directions. */
export class FederationPolicy {
  private readonly allowed: ReadonlySet<string>;
  private readonly denied: ReadonlySet<string>;

  constructor(private readonly config: PolicyConfig) {
    this.allowed = new Set(config.allowed);
    this.denied = new Set(config.denied);
  }

  /** Why `domain` is refused, or undefined when it may federate. */
  refusal(domain: string): string | undefined {
    if (this.denied.has(domain)) return "denylisted";
    if (this.config.mode === "allowlist" && !this.allowed.has(domain)) return "not on the allowlist";
    return undefined;
  }

  /** Throws PeerRefusedError unless `domain` may federate. */
  check(domain: string): void {
    const reason = this.refusal(domain);
    if (reason !== undefined) throw new PeerRefusedError(domain, reason);
  }
}

/** Token-bucket parameters: `ratePerSecond` sustained, up to `burst` at once. */
export interface RateLimitConfig {
  ratePerSecond: number;
  burst: number;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

/** Per-peer token buckets (in memory, per gateway replica). */
export class PeerRateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly config: RateLimitConfig,
    private readonly now: () => number = Date.now,
    private readonly maxPeers = 10_000,
  ) {}

  /** Takes one token of `domain`'s bucket or throws PeerRateLimitedError. */
  take(domain: string): void {
    if (!this.tryTake(domain)) throw new PeerRateLimitedError(domain);
  }

  /** Takes one token if available. */
  tryTake(domain: string): boolean {
    const now = this.now();
    let bucket = this.buckets.get(domain);
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxPeers) this.evictFull(now);
      bucket = { tokens: this.config.burst, updatedAt: now };
      this.buckets.set(domain, bucket);
    } else {
      const elapsed = Math.max(0, now - bucket.updatedAt);
      bucket.tokens = Math.min(
        this.config.burst,
        bucket.tokens + (elapsed * this.config.ratePerSecond) / 1000,
      );
      bucket.updatedAt = now;
    }
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Forgets buckets that have refilled completely (they carry no state worth keeping). */
  private evictFull(now: number): void {
    for (const [domain, bucket] of this.buckets) {
      const refill = ((now - bucket.updatedAt) * this.config.ratePerSecond) / 1000;
      if (bucket.tokens + refill >= this.config.burst) this.buckets.delete(domain);
    }
  }
}
