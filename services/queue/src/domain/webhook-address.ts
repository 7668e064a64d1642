import { BlockList, isIP } from "node:net";
import { TrustedProxyError, trustedProxies } from "@phoenix/runtime/rate-limit";

/**
 * Which addresses a push webhook may reach. A client chooses the webhook URL, so without this
 * check the QS would POST on the client's behalf into the operator's own network (SSRF): the
 * loopback services, the cluster's private ranges, a cloud metadata endpoint. Only public unicast
 * addresses are reachable, plus what the operator allowlists (QS_PUSH_WEBHOOK_ALLOW: host names
 * and IP addresses / CIDR blocks, e.g. a self-hosted push relay on the private network).
 */
const REFUSED = new BlockList();
for (const [address, bits] of [
  ["0.0.0.0", 8], // "this network", unspecified
  ["10.0.0.0", 8], // RFC 1918
  ["100.64.0.0", 10], // CGNAT (RFC 6598)
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local, cloud metadata (169.254.169.254)
  ["172.16.0.0", 12], // RFC 1918
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.0.2.0", 24], // documentation
  ["192.168.0.0", 16], // RFC 1918
  ["198.18.0.0", 15], // benchmarking
  ["198.51.100.0", 24], // documentation
  ["203.0.113.0", 24], // documentation
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, broadcast
] as const) {
  REFUSED.addSubnet(address, bits, "ipv4");
}
for (const [address, bits] of [
  ["::", 128], // unspecified
  ["::1", 128], // loopback
  ["::", 96], // IPv4-compatible (deprecated)
  ["100::", 64], // discard
  ["2001::", 32], // Teredo (an obfuscated IPv4 address)
  ["2001:db8::", 32], // documentation
  ["fc00::", 7], // unique local (ULA), includes the AWS metadata address fd00:ec2::254
  ["fe80::", 10], // link-local
  ["fec0::", 10], // site-local (deprecated)
  ["ff00::", 8], // multicast
] as const) {
  REFUSED.addSubnet(address, bits, "ipv6");
}

/** IPv6 forms that embed an IPv4 address: checked as that IPv4 address. */
function embeddedIpv4(address: string): string | undefined {
  const mappedDotted = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mappedDotted !== undefined) return mappedDotted;
  const groups = expandIpv6(address);
  if (groups === undefined) return undefined;
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  const isZero = (from: number, to: number) => groups.slice(from, to).every((g) => g === 0);
  // ::ffff:a.b.c.d (IPv4-mapped) and 64:ff9b::a.b.c.d (NAT64) in hex notation.
  if (isZero(0, 5) && groups[5] === 0xffff) return v4(groups[6] ?? 0, groups[7] ?? 0);
  if (groups[0] === 0x64 && groups[1] === 0xff9b && isZero(2, 6)) return v4(groups[6] ?? 0, groups[7] ?? 0);
  // 2002:a.b.c.d::/48 (6to4).
  if (groups[0] === 0x2002) return v4(groups[1] ?? 0, groups[2] ?? 0);
  return undefined;
}

/** The eight 16-bit groups of an IPv6 address (no embedded dotted quad), or undefined. */
function expandIpv6(address: string): number[] | undefined {
  if (address.includes(".")) return undefined;
  const [head = "", tail, extra] = address.split("::");
  if (extra !== undefined) return undefined;
  const parse = (s: string) => (s === "" ? [] : s.split(":").map((g) => Number.parseInt(g, 16)));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  const fill = 8 - left.length - right.length;
  if (fill < 0 || (tail === undefined && fill !== 0)) return undefined;
  return [...left, ...new Array<number>(fill).fill(0), ...right];
}

/**
 * Whether `address` (an IP address literal) is one a webhook must not reach: loopback, private
 * (RFC 1918, ULA), link-local, CGNAT, multicast, unspecified, reserved, documentation, cloud
 * metadata, and IPv6 forms embedding such an IPv4 address (IPv4-mapped, NAT64, 6to4).
 */
export function isRefusedAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  const family = isIP(bare);
  if (family === 0) return true;
  if (family === 4) return REFUSED.check(bare, "ipv4");
  const v4 = embeddedIpv4(bare);
  if (v4 !== undefined && isIP(v4) === 4) return REFUSED.check(v4, "ipv4");
  return REFUSED.check(bare, "ipv6");
}

/** An allowlist entry that is neither a host name nor an IP address / CIDR block. */
export class WebhookAllowlistError extends Error {
  override readonly name = "WebhookAllowlistError";
}

const HOST_NAME =
  /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/**
 * The operator's exceptions (QS_PUSH_WEBHOOK_ALLOW) and the refused ranges: decides, for a
 * webhook URL's host and the addresses it resolved to, whether the QS may connect.
 */
export class WebhookAddressPolicy {
  private readonly hosts: ReadonlySet<string>;
  private readonly blocks: { has(address: string): boolean };

  constructor(allow: readonly string[] = []) {
    const hosts = new Set<string>();
    const blocks: string[] = [];
    for (const raw of allow) {
      const entry = raw.trim().toLowerCase();
      if (isIP(entry.split("/")[0] ?? "") !== 0) blocks.push(entry);
      else if (HOST_NAME.test(entry)) hosts.add(entry);
      else
        throw new WebhookAllowlistError(
          `webhook allowlist entry "${raw}" is not a host name, IP address or CIDR block`,
        );
    }
    this.hosts = hosts;
    try {
      // The runtime's address/CIDR matcher (also matches IPv4-mapped IPv6 to IPv4 entries).
      this.blocks = trustedProxies(blocks);
    } catch (error) {
      if (error instanceof TrustedProxyError) {
        throw new WebhookAllowlistError(
          `webhook allowlist: an entry is not an IP address or CIDR block (${blocks.join(", ")})`,
        );
      }
      throw error;
    }
  }

  /** The host is allowlisted by name: whatever it resolves to may be reached. */
  allowsHost(host: string): boolean {
    return this.hosts.has(normalHost(host));
  }

  /** Whether a connection to `address` (resolved for `host`) is allowed. */
  allowsAddress(host: string, address: string): boolean {
    if (this.allowsHost(host)) return true;
    const bare = address.replace(/^\[|\]$/g, "");
    return this.blocks.has(bare) || !isRefusedAddress(bare);
  }

  /**
   * The check possible without DNS (when a client sets the URL): a host that is an IP literal or
   * a loopback name must be allowed now. Returns the reason when refused, else undefined (a host
   * name is checked after resolution, at delivery).
   */
  refusalWithoutDns(url: URL): string | undefined {
    const host = normalHost(url.hostname);
    if (this.allowsHost(host)) return undefined;
    if (isIP(host) !== 0) {
      return this.allowsAddress(host, host) ? undefined : "its address is private, loopback or reserved";
    }
    if (host === "localhost" || host.endsWith(".localhost")) return "it names the loopback host";
    return undefined;
  }
}

/** URL host without IPv6 brackets or a trailing dot, lower case. */
function normalHost(host: string): string {
  return host
    .replace(/^\[|\]$/g, "")
    .replace(/\.$/, "")
    .toLowerCase();
}
