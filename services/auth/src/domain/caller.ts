/** Longest caller address kept (an IPv6 address with zone fits; anything longer is not an address). */
const MAX_ADDRESS_LENGTH = 64;

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

/**
 * Who is calling, for per-caller rate limits: the peer's address, unless the peer is a trusted
 * proxy (the edge gateway), in which case the nearest address in `x-forwarded-for` that is not
 * itself a trusted proxy. Entries are read from the right: everything left of the first
 * untrusted hop could have been written by the caller.
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
