import type { SrvRecord } from "node:dns";
import { resolveSrv as dnsResolveSrv } from "node:dns/promises";
import { BoundedCache } from "@phoenix/runtime/cache";
import { PeerDiscoveryError } from "../domain/errors.js";
import type { PeerAddress } from "../domain/peers.js";

/** The SRV service name a homeserver publishes for its federation gateway. */
export const SRV_PREFIX = "_phoenix-federation._tcp.";
/** The fallback when a domain publishes no SRV record: `federation.<domain>:8443`. */
export const FALLBACK_HOST_PREFIX = "federation.";
export const FALLBACK_PORT = 8443;

export interface PeerResolverOptions {
  /** Operator overrides (FEDERATION_PEERS); consulted first, never expire. */
  staticPeers: ReadonlyMap<string, PeerAddress>;
  /** Only the static map is used (private federations, tests): unknown domains fail. */
  staticOnly?: boolean;
  /** How long a DNS answer is reused (default 5 minutes). */
  cacheTtlMs?: number;
  /**
   * At most this many DNS answers are kept, least recently used dropped first (default 10000):
   * in open federation the domains looked up are chosen by whoever sends requests.
   */
  cacheMaxEntries?: number;
  /** Injectable for tests (default node:dns `resolveSrv`). */
  resolveSrv?: (name: string) => Promise<SrvRecord[]>;
  now?: () => number;
}

/**
 * Finds a peer domain's gateway: the static map, else the `_phoenix-federation._tcp.<domain>` SRV
 * record (lowest priority, then highest weight), else `federation.<domain>:8443`.
 */
export class PeerResolver {
  private readonly cache: BoundedCache<string, PeerAddress>;
  private readonly resolveSrv: (name: string) => Promise<SrvRecord[]>;

  constructor(private readonly options: PeerResolverOptions) {
    this.resolveSrv = options.resolveSrv ?? dnsResolveSrv;
    this.cache = new BoundedCache({
      maxEntries: options.cacheMaxEntries ?? 10_000,
      ttlMs: options.cacheTtlMs ?? 300_000,
      ...(options.now ? { now: options.now } : {}),
    });
  }

  /** DNS answers held now (expired ones not yet dropped included). */
  get cachedAnswers(): number {
    return this.cache.size;
  }

  /** The gateway address of `domain`; throws PeerDiscoveryError when none can be found. */
  async resolve(domain: string): Promise<PeerAddress> {
    const pinned = this.options.staticPeers.get(domain);
    if (pinned) return pinned;
    if (this.options.staticOnly)
      throw new PeerDiscoveryError(`domain ${domain} is not in the static peer map`);
    const cached = this.cache.get(domain);
    if (cached) return cached;
    const address = await this.lookup(domain);
    this.cache.set(domain, address);
    return address;
  }

  private async lookup(domain: string): Promise<PeerAddress> {
    let records: SrvRecord[];
    try {
      records = await this.resolveSrv(`${SRV_PREFIX}${domain}`);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === "ENOTFOUND" || code === "ENODATA") {
        return { host: `${FALLBACK_HOST_PREFIX}${domain}`, port: FALLBACK_PORT };
      }
      throw new PeerDiscoveryError(`SRV lookup for ${domain} failed: ${code ?? "error"}`);
    }
    const best = [...records].sort((a, b) => a.priority - b.priority || b.weight - a.weight)[0];
    if (!best || best.name === "" || best.name === ".") {
      // An empty target ("." per RFC 2782) means the domain explicitly offers no federation.
      if (best) throw new PeerDiscoveryError(`domain ${domain} does not federate (SRV target ".")`);
      return { host: `${FALLBACK_HOST_PREFIX}${domain}`, port: FALLBACK_PORT };
    }
    return { host: best.name.replace(/\.$/, ""), port: best.port };
  }
}
