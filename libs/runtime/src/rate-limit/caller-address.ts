/** The gRPC metadata key (and HTTP header) naming the client a trusted proxy forwards for. */
export const FORWARDED_FOR_KEY = "x-forwarded-for";

/**
 * The gRPC metadata key with which the federation gateway names the homeserver whose client a
 * forwarded request comes from (the gateway verified that domain's signature).
 */
export const ORIGIN_DOMAIN_KEY = "phoenix-origin-domain";

/** Longest hop accepted as a caller address (an IPv6 address with a zone fits; longer is not one). */
export const MAX_ADDRESS_LENGTH = 64;

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
  trustedProxies: ReadonlySet<string>,
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
export function callerAddressOf(call: CallerCall, trustedProxies: ReadonlySet<string>): string {
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
