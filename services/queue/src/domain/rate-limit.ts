import { common } from "@phoenix/proto";
import { ResourceExhaustedError } from "@phoenix/runtime/errors";
import { errorDetail } from "./errors.js";

// A second copy of the token bucket services/auth and services/edge-gateway keep: it belongs in
// libs/runtime (reported), and this file goes once it is there.

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * A configured rate limit: `capacity` requests per `periodMs` per key (a caller, a friendship
 * token hash), refilled continuously. Named after its configuration variable, so a refused
 * caller and the operator reading the log know which limit was hit. In memory, per replica;
 * least recently used keys are forgotten beyond `maxKeys`. Capacity 0 disables it.
 */
export class RateLimit {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    /** What is limited per what: `FetchAddPackages per friendship token`. */
    readonly subject: string,
    /** The configuration variable: `QS_RATE_FETCH_ADD_PACKAGES_PER_TOKEN`. */
    readonly variable: string,
    readonly capacity: number,
    readonly periodMs: number,
    private readonly maxKeys = 100_000,
  ) {}

  /** Takes one request for `key`; RESOURCE_EXHAUSTED (reason RATE_LIMIT) naming the limit if over. */
  take(key: string, now: number): void {
    if (this.capacity <= 0) return;
    const rate = this.capacity / this.periodMs;
    const start = this.buckets.get(key) ?? { tokens: this.capacity, at: now };
    const tokens = Math.min(this.capacity, start.tokens + Math.max(0, now - start.at) * rate);
    // Re-inserting moves the key to the end: the first key is the least recently used.
    this.buckets.delete(key);
    this.buckets.set(key, { tokens: tokens >= 1 ? tokens - 1 : tokens, at: now });
    if (this.buckets.size > this.maxKeys) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
    if (tokens < 1) throw this.refusal(Math.ceil((1 - tokens) / rate));
  }

  private refusal(waitMs: number): ResourceExhaustedError {
    const limit = `${this.variable}=${this.capacity} per ${this.periodMs / 1000} s`;
    return new ResourceExhaustedError(
      `${this.subject}: rate limit ${limit} exceeded, retry in ${Math.ceil(waitMs / 1000)} s`,
      {
        details: [
          errorDetail({
            reason: common.ErrorReason.ERROR_REASON_RATE_LIMIT,
            detail: {
              $case: "retry",
              value: {
                retryAfter: { seconds: BigInt(Math.floor(waitMs / 1000)), nanos: (waitMs % 1000) * 1e6 },
              },
            },
          }),
        ],
      },
    );
  }
}

/** Longest caller address kept (an IPv6 address with zone fits; anything longer is not one). */
const MAX_ADDRESS_LENGTH = 64;

/** The host of a grpc-js peer: `ipv4:10.0.0.7:5312` → `10.0.0.7`, `ipv6:[::1]:5312` → `::1`. */
export function peerHost(peer: string): string {
  const bare = peer.replace(/^(ipv4|ipv6|dns):/, "");
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(bare);
  if (bracketed?.[1]) return bracketed[1];
  const v4 = /^([^:]+):\d+$/.exec(bare);
  return v4?.[1] ?? bare;
}

/**
 * Who is calling, for per-caller limits: the peer's address, unless the peer is a trusted proxy
 * (the edge gateway), then the nearest `x-forwarded-for` hop that is not a trusted proxy (read
 * from the right: whatever lies left of the first untrusted hop the caller could have written).
 */
export function callerAddress(
  peer: string,
  forwardedFor: readonly string[],
  trustedProxies: ReadonlySet<string>,
): string {
  const host = peerHost(peer);
  if (!trustedProxies.has(host)) return host;
  const hops = forwardedFor
    .flatMap((value) => value.split(","))
    .map((hop) => hop.trim())
    .filter((hop) => hop !== "");
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i] as string;
    if (hop.length > MAX_ADDRESS_LENGTH) return host;
    if (!trustedProxies.has(hop)) return hop;
  }
  return host;
}
