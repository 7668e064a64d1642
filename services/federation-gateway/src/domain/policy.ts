import { TokenBucketLimiter } from "@phoenix/runtime/rate-limit";
import { PeerRefusedError } from "./errors.js";

/** Which peer domains this homeserver federates with. */
export interface PolicyConfig {
  /** `allowlist`: only `allowed` domains; `open`: every domain except `denied`. */
  mode: "allowlist" | "open";
  allowed: readonly string[];
  /** Refused in both modes (a denylist entry wins over an allowlist entry). */
  denied: readonly string[];
}

/**
 * The federation policy: decides per peer domain, in both directions. One instance is shared by
 * the inbound authenticator, the proxy and the outbound lanes; `replace` swaps the policy in force
 * for all of them at once (an operator's SetFederationPolicy, seen by every replica).
 */
export class FederationPolicy {
  private config: PolicyConfig;
  private allowed: ReadonlySet<string>;
  private denied: ReadonlySet<string>;

  constructor(config: PolicyConfig) {
    this.config = config;
    this.allowed = new Set(config.allowed);
    this.denied = new Set(config.denied);
  }

  /** The policy in force. */
  get current(): PolicyConfig {
    return this.config;
  }

  /** Puts `config` in force from the next decision on. */
  replace(config: PolicyConfig): void {
    this.config = config;
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

/**
 * The per-peer token buckets (in memory, per gateway replica): `burst` tokens, refilled at
 * `ratePerSecond`. At most `maxPeers` buckets are kept (full ones are dropped first).
 */
export function peerRateLimiter(
  config: RateLimitConfig,
  now: () => number = Date.now,
  maxPeers = 10_000,
): TokenBucketLimiter {
  return new TokenBucketLimiter({
    capacity: config.burst,
    periodMs: (config.burst * 1000) / config.ratePerSecond,
    maxKeys: maxPeers,
    now,
  });
}
