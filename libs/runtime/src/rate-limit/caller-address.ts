import { BlockList, isIP } from "node:net";

/** The gRPC metadata key (and HTTP header) naming the client a trusted proxy forwards for. */
export const FORWARDED_FOR_KEY = "x-forwarded-for";

/**
 * The gRPC metadata key with which the federation gateway names the homeserver whose client a
 * forwarded request comes from (the gateway verified that domain's signature).
 */
export const ORIGIN_DOMAIN_KEY = "phoenix-origin-domain";

/** Longest hop accepted as a caller address (an IPv6 address with a zone fits; longer is not one). */
export const MAX_ADDRESS_LENGTH = 64;

/** The addresses whose `x-forwarded-for` is believed: a `Set` of addresses or {@link trustedProxies}. */
export interface AddressMatcher {
  has(address: string): boolean;
}

/** A trusted-proxy entry that is neither an IP address nor a CIDR block. */
export class TrustedProxyError extends Error {
  override readonly name = "TrustedProxyError";
}

/**
 * Trusted proxies from configuration entries: single addresses (`10.0.0.7`, `::1`) or CIDR blocks
 * (`10.42.0.0/16`, `fd00::/8`), for deployments where the gateways' pods get addresses from a
 * range rather than fixed ones (Kubernetes). An IPv4-mapped IPv6 peer (`::ffff:10.0.0.7`) matches
 * its IPv4 entry.
 */
export function trustedProxies(entries: readonly string[]): AddressMatcher {
  const list = new BlockList();
  for (const entry of entries) {
    const block = parseAddressBlock(entry);
    if (!block) throw new TrustedProxyError(`trusted proxy "${entry}" is not an IP address or CIDR block`);
    if (block.bits === undefined) list.addAddress(block.address, block.type);
    else list.addSubnet(block.address, block.bits, block.type);
  }
  return {
    has(candidate: string): boolean {
      const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(candidate)?.[1];
      const address = mapped ?? candidate;
      const family = isIP(address);
      if (family === 0) return false;
      return list.check(address, family === 6 ? "ipv6" : "ipv4");
    },
  };
}

/** An IP address (`bits` undefined) or CIDR block parsed from `addr` / `addr/bits`; undefined if neither. */
export function parseAddressBlock(
  entry: string,
): { address: string; bits: number | undefined; type: "ipv4" | "ipv6" } | undefined {
  const [address = "", prefix, extra] = entry.trim().split("/");
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return undefined;
  const type = family === 6 ? "ipv6" : "ipv4";
  if (prefix === undefined) return { address, bits: undefined, type };
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > (family === 6 ? 128 : 32)) return undefined;
  return { address, bits: Number(prefix), type };
}

/** The caller side of a gRPC call: its peer string and its metadata. */
export interface CallerCall {
  readonly peer: string;
  readonly metadata: { get(key: string): ReadonlyArray<string | { toString(): string }> };
}

/**
 * The host part of a grpc-js peer string: `ipv4:10.0.0.7:5312` → `10.0.0.7`,
 * `ipv6:[::1]:5312` → `::1`; anything else (unix sockets) is returned whole.
 */
export function peerHost(peer: string): string {
  const bare = peer.replace(/^(ipv4|ipv6|dns):/, "");
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(bare);
  if (bracketed?.[1]) return bracketed[1];
  const v4 = /^([^:]+):\d+$/.exec(bare);
  return v4?.[1] ?? bare;
}

/** The hops of one or more `x-forwarded-for` values, oldest (leftmost) first, blanks dropped. */
export function forwardedHops(values: readonly string[]): string[] {
  return values
    .flatMap((value) => value.split(","))
    .map((hop) => hop.trim())
    .filter((hop) => hop !== "");
}

/**
 * Who is calling, for per-caller limits: the peer's address, unless the peer is a trusted proxy
 * (the edge gateway), then the nearest `x-forwarded-for` hop that is not itself a trusted proxy.
 * Hops are read from the right: whatever lies left of the first untrusted hop the caller could
 * have written, so it can never name another address.
 */
export function callerAddress(
  peer: string,
  forwardedFor: readonly string[],
  trustedProxies: AddressMatcher,
): string {
  const host = peerHost(peer);
  if (!trustedProxies.has(host)) return host;
  const hops = forwardedHops(forwardedFor);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i] as string;
    if (hop.length > MAX_ADDRESS_LENGTH) return host;
    if (!trustedProxies.has(hop)) return hop;
  }
  return host;
}

/**
 * {@link callerAddress} of a gRPC call (its peer and its `x-forwarded-for` metadata). A request
 * a peer homeserver forwarded (a trusted peer — the federation gateway — sending
 * `phoenix-origin-domain`) is charged to that domain, `domain:<origin>`: the gateway is one
 * address for every peer, and the origin's clients stay unknown here.
 */
export function callerAddressOf(call: CallerCall, trustedProxies: AddressMatcher): string {
  const forwarded = call.metadata
    .get(FORWARDED_FOR_KEY)
    .map((v) => (typeof v === "string" ? v : v.toString()));
  const origin = call.metadata.get(ORIGIN_DOMAIN_KEY)[0];
  if (origin !== undefined && trustedProxies.has(peerHost(call.peer))) {
    const domain = typeof origin === "string" ? origin : origin.toString();
    if (domain.length > 0 && domain.length <= 253) return `domain:${domain}`;
  }
  return callerAddress(call.peer, forwarded, trustedProxies);
}
