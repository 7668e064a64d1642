import { Metadata } from "@grpc/grpc-js";
import { common } from "@phoenix/proto";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { envAddressList, loadConfig } from "../config/index.js";
import { ResourceExhaustedError } from "../errors/rpc-errors.js";
import {
  callerAddress,
  callerAddressOf,
  peerHost,
  TrustedProxyError,
  trustedProxies,
} from "./caller-address.js";
import { NamedRateLimit } from "./named-rate-limit.js";
import { TokenBucketLimiter, takeToken } from "./token-bucket.js";

describe("TokenBucketLimiter", () => {
  it("allows the burst, refuses with the wait until a token is back, and refills with the clock", () => {
    let now = 1_000;
    const limiter = new TokenBucketLimiter({ capacity: 3, periodMs: 3_000, now: () => now });
    expect([limiter.take("a"), limiter.take("a"), limiter.take("a")]).toEqual([0, 0, 0]);
    expect(limiter.take("a")).toBe(1_000);
    expect(limiter.take("b")).toBe(0);
    now += 1_000;
    expect(limiter.take("a")).toBe(0);
    expect(limiter.take("a")).toBeGreaterThan(0);
  });

  it("keeps at most maxKeys buckets, dropping refilled ones before busy ones", () => {
    let now = 0;
    const limiter = new TokenBucketLimiter({ capacity: 1, periodMs: 1_000, maxKeys: 2, now: () => now });
    limiter.take("busy");
    now = 2_000;
    limiter.take("fresh");
    expect(limiter.take("busy")).toBe(0);
    expect(limiter.take("busy")).toBeGreaterThan(0);
    limiter.take("third");
    expect(limiter.size).toBeLessThanOrEqual(2);
    // "busy" is still empty: it was not the one dropped.
    expect(limiter.take("busy")).toBeGreaterThan(0);
  });

  it("takeToken works on a stored bucket and never refills past capacity", () => {
    const first = takeToken(undefined, 2, 60_000, 0);
    expect(first).toEqual({ bucket: { tokens: 1, at: 0 }, waitMs: 0 });
    const later = takeToken(first.bucket, 2, 60_000, 10 * 60_000);
    expect(later.bucket.tokens).toBe(1);
  });
});

describe("NamedRateLimit", () => {
  it("refuses with RESOURCE_EXHAUSTED naming the variable, reason RATE_LIMIT and the retry delay", () => {
    const limit = new NamedRateLimit("lookups per caller", "AS_X_PER_MINUTE", 1, 60_000);
    limit.take("a", 0);
    let error: unknown;
    try {
      limit.take("a", 30_000);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ResourceExhaustedError);
    const refused = error as ResourceExhaustedError;
    expect(refused.message).toBe(
      "lookups per caller (AS_X_PER_MINUTE=1 per minute): rate limit exceeded, retry in 30 s",
    );
    const detail = common.ErrorDetail.decode(refused.details[0]?.value ?? new Uint8Array());
    expect(detail.reason).toBe(common.ErrorReason.ERROR_REASON_RATE_LIMIT);
    expect(detail.detail?.$case === "retry" && detail.detail.value.retryAfter?.seconds).toBe(30n);
    expect(() => limit.take("b", 30_000)).not.toThrow();
  });

  it("is disabled with capacity 0 and charges a stored bucket with takeFrom", () => {
    const off = new NamedRateLimit("x", "X", 0, 60_000);
    for (let i = 0; i < 5; i++) off.take("a", 0);
    const limit = new NamedRateLimit("offers to this queue", "AS_ENQUEUE_RATE_PER_MINUTE", 1, 60_000);
    const bucket = limit.takeFrom(undefined, 0);
    // The one token is taken: the bucket to store is empty as of now.
    expect(bucket).toEqual({ tokens: 0, at: 0 });
    expect(() => limit.takeFrom(bucket, 1_000)).toThrow(/AS_ENQUEUE_RATE_PER_MINUTE=1 per minute/);
    // A whole period later the token is back and taken again.
    expect(limit.takeFrom(bucket, 60_000)).toEqual({ tokens: 0, at: 60_000 });
    // Disabled, the stored bucket is left as it is.
    expect(off.takeFrom(bucket, 1_000)).toBe(bucket);
  });
});

describe("caller address", () => {
  const proxies = new Set(["10.0.0.2", "10.0.0.3"]);

  it("reads the host of grpc-js peers", () => {
    expect(peerHost("ipv4:10.0.0.7:5312")).toBe("10.0.0.7");
    expect(peerHost("ipv6:[::1]:5312")).toBe("::1");
    expect(peerHost("unix:/tmp/s")).toBe("unix:/tmp/s");
  });

  it("trusts x-forwarded-for only from a trusted proxy, read from the right", () => {
    expect(callerAddress("ipv4:10.0.0.9:1", ["198.51.100.1"], proxies)).toBe("10.0.0.9");
    expect(callerAddress("ipv4:10.0.0.2:1", ["198.51.100.1"], proxies)).toBe("198.51.100.1");
    expect(callerAddress("ipv4:10.0.0.2:1", ["6.6.6.6, 198.51.100.1, 10.0.0.3"], proxies)).toBe(
      "198.51.100.1",
    );
    expect(callerAddress("ipv4:10.0.0.2:1", [], proxies)).toBe("10.0.0.2");
    expect(callerAddress("ipv4:10.0.0.2:1", ["x".repeat(100)], proxies)).toBe("10.0.0.2");
  });

  it("reads a call's peer and metadata", () => {
    const metadata = new Metadata();
    metadata.add("x-forwarded-for", "203.0.113.5");
    expect(callerAddressOf({ peer: "ipv4:10.0.0.2:9", metadata }, proxies)).toBe("203.0.113.5");
    expect(callerAddressOf({ peer: "ipv4:10.0.0.8:9", metadata }, proxies)).toBe("10.0.0.8");
  });

  it("charges a request a peer homeserver forwarded to its domain, only from a trusted peer", () => {
    const metadata = new Metadata();
    metadata.add("phoenix-origin-domain", "beta.example");
    expect(callerAddressOf({ peer: "ipv4:10.0.0.2:9", metadata }, proxies)).toBe("domain:beta.example");
    expect(callerAddressOf({ peer: "ipv4:10.0.0.8:9", metadata }, proxies)).toBe("10.0.0.8");
  });
});

describe("trusted proxies", () => {
  it("matches single addresses and CIDR blocks (pod ranges), IPv4-mapped peers included", () => {
    const proxies = trustedProxies(["127.0.0.1", "10.42.0.0/16", "fd00::/8"]);
    expect(proxies.has("127.0.0.1")).toBe(true);
    expect(proxies.has("10.42.7.9")).toBe(true);
    expect(proxies.has("::ffff:10.42.7.9")).toBe(true);
    expect(proxies.has("fd12::5")).toBe(true);
    expect(proxies.has("10.43.0.1")).toBe(false);
    expect(proxies.has("127.0.0.2")).toBe(false);
    expect(proxies.has("not-an-address")).toBe(false);
    // A pod of the range forwards for its client; a hop inside the range is skipped like a proxy.
    expect(callerAddress("ipv4:10.42.1.1:5", ["203.0.113.9, 10.42.3.3"], proxies)).toBe("203.0.113.9");
    expect(callerAddress("ipv4:10.43.1.1:5", ["203.0.113.9"], proxies)).toBe("10.43.1.1");
  });

  it("refuses an entry that is neither an address nor a block, in code and in configuration", () => {
    expect(() => trustedProxies(["10.0.0.0/33"])).toThrow(TrustedProxyError);
    expect(() => trustedProxies(["edge-gateway"])).toThrow(/edge-gateway/);
    const schema = z.object({ AS_TRUSTED_PROXIES: envAddressList({ default: [] }) });
    expect(loadConfig(schema, { AS_TRUSTED_PROXIES: "10.0.0.1, 10.42.0.0/16" }).AS_TRUSTED_PROXIES).toEqual([
      "10.0.0.1",
      "10.42.0.0/16",
    ]);
    expect(() => loadConfig(schema, { AS_TRUSTED_PROXIES: "10.0.0.1,fd00::/200" })).toThrow(
      /AS_TRUSTED_PROXIES.*entry 2 is not an IP address or CIDR block/,
    );
  });
});
