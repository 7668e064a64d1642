import type { IncomingMessage } from "node:http";
import { FORWARDED_FOR_KEY, forwardedHops, MAX_ADDRESS_LENGTH } from "@phoenix/runtime/rate-limit";

/** The gRPC metadata key (and HTTP header) that names the client a call is forwarded for. */
export { FORWARDED_FOR_KEY };

/** Incoming hops kept at most (the rightmost ones); older hops are dropped. */
const MAX_FORWARDED_HOPS = 8;
/** Longest `x-forwarded-for` value sent upstream (gRPC refuses oversized metadata). */
const MAX_FORWARDED_LENGTH = 512;

/** Where a request came from, as the gateway counts it and as it tells the upstream services. */
export interface ClientOrigin {
  /** The client address: the key of the gateway's per-IP rate limit. */
  readonly address: string;
  /**
   * The `x-forwarded-for` value of every upstream call: the hops a trusted proxy passed on (only
   * with `trustProxy`), then the address of the TCP peer. Undefined when there is nothing to send.
   */
  readonly forwardedFor: string | undefined;
}

/** `::ffff:192.0.2.7` (an IPv4 client on a dual-stack listener) → `192.0.2.7`. */
function normalizeAddress(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return mapped?.[1] ?? address;
}

/**
 * The hops of the incoming X-Forwarded-For header(s), oldest first, keeping only the rightmost
 * ones that fit the bounds: a receiver reads the chain from the right, so dropping from the left
 * never changes whom it attributes a call to.
 */
function incomingHops(header: string | string[] | undefined): string[] {
  if (header === undefined) return [];
  const all = forwardedHops(Array.isArray(header) ? header : [header]);
  const kept: string[] = [];
  let length = 0;
  for (let i = all.length - 1; i >= 0 && kept.length < MAX_FORWARDED_HOPS; i--) {
    const hop = all[i] as string;
    length += hop.length + 2;
    if (length > MAX_FORWARDED_LENGTH) break;
    kept.unshift(hop);
  }
  return kept;
}

/**
 * Who sent `req`. Without `trustProxy` it is the TCP peer, and an incoming X-Forwarded-For is
 * discarded: a client cannot name another address, neither to the gateway's rate limit nor to
 * the services behind it. With `trustProxy` (the gateway sits behind one proxy that appends the
 * address it saw to X-Forwarded-For), the client is the rightmost incoming hop — entries further
 * left were written by the client — and the incoming chain is passed on with the peer appended,
 * for services (the AS's `AS_TRUSTED_PROXIES`) that read it from the right.
 */
export function clientOrigin(req: IncomingMessage, trustProxy: boolean): ClientOrigin {
  const remote = req.socket.remoteAddress;
  const peer = remote === undefined ? undefined : normalizeAddress(remote);
  const hops = trustProxy ? incomingHops(req.headers[FORWARDED_FOR_KEY]) : [];
  const nearest = hops.at(-1);
  const address =
    nearest !== undefined && nearest.length <= MAX_ADDRESS_LENGTH ? nearest : (peer ?? "unknown");
  const chain = peer === undefined ? hops : [...hops, peer];
  return { address, forwardedFor: chain.length > 0 ? chain.join(", ") : undefined };
}
