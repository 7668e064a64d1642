import { isValidDomain } from "@phoenix/crypto";
import { FederationConfigError } from "./errors.js";

/** A gateway address: where a peer domain's FederationService listens. */
export interface PeerAddress {
  host: string;
  port: number;
}

/** Parses `host:port` (IPv6 hosts in brackets). */
export function parseAddress(value: string): PeerAddress {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]\s]+):(\d{1,5})$/.exec(value.trim());
  const port = match ? Number(match[2]) : Number.NaN;
  if (!match?.[1] || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new FederationConfigError(`"${value}" is not host:port`);
  }
  return { host: match[1], port };
}

/** `host:port` for a gRPC target. */
export function formatAddress(address: PeerAddress): string {
  return `${address.host}:${address.port}`;
}

/**
 * Parses the static domain map `domain=host:port,domain=host:port` (FEDERATION_PEERS); entries
 * arrive already split on commas. Throws FederationConfigError naming the bad entry.
 */
export function parseStaticPeers(entries: readonly string[]): Map<string, PeerAddress> {
  const map = new Map<string, PeerAddress>();
  for (const entry of entries) {
    const eq = entry.indexOf("=");
    const domain = eq < 0 ? "" : entry.slice(0, eq).trim();
    if (!isValidDomain(domain)) throw new FederationConfigError(`"${entry}": expected domain=host:port`);
    if (map.has(domain)) throw new FederationConfigError(`"${domain}" appears twice`);
    map.set(domain, parseAddress(entry.slice(eq + 1)));
  }
  return map;
}
