import { bytesEqual, signatureKeyId, VerifyingKey } from "@phoenix/crypto";
import { BoundedCache } from "@phoenix/runtime/cache";
import type { Database } from "@phoenix/runtime/db";
import type { Logger } from "@phoenix/runtime/log";
import { FederationAuthError } from "../domain/errors.js";
import { type CachedPeerKey, loadPeerKeys, storePeerKeys } from "../store/key-store.js";
import type { PeerClients } from "./peer-clients.js";

export interface PeerKeyDirectoryOptions {
  db: Database;
  clients: PeerClients;
  logger: Logger;
  /** A fetched key list is reused this long. */
  ttlMs: number;
  /** At most one forced refetch per domain this often (a forged signature must not become a fetch storm). */
  refetchMs: number;
  /**
   * Peer domains whose keys (and last forced refetch) stay in memory, least recently used dropped
   * first (default 10000); the database cache still holds the others.
   */
  maxEntries?: number;
  fetchTimeoutMs?: number;
  now?: () => number;
}

interface Entry {
  keys: CachedPeerKey[];
  fetchedAt: number;
}

/**
 * Peer domains' federation verifying keys: memory, then the database cache, then GetDomainKeys
 * from the peer's gateway (authenticated by its TLS certificate). Lists expire after `ttlMs`; a
 * signature that no cached key verifies triggers a refetch (rate-limited), which is how a peer's
 * key rotation is picked up.
 */
export class PeerKeyDirectory {
  /** Key lists, each held at most `ttlMs` after it was cached (its fetch time is checked too). */
  private readonly memory: BoundedCache<string, Entry>;
  private readonly lastForced: BoundedCache<string, number>;
  private readonly inflight = new Map<string, Promise<Entry>>();
  private readonly now: () => number;

  constructor(private readonly options: PeerKeyDirectoryOptions) {
    this.now = options.now ?? Date.now;
    const maxEntries = options.maxEntries ?? 10_000;
    const clock = { now: this.now };
    this.memory = new BoundedCache({ maxEntries, ttlMs: options.ttlMs, ...clock });
    // A mark older than refetchMs no longer limits anything.
    this.lastForced = new BoundedCache({ maxEntries, ttlMs: options.refetchMs, ...clock });
  }

  /** Peer domains whose keys are held in memory (expired ones not yet dropped included). */
  get cachedDomains(): number {
    return this.memory.size;
  }

  /** The keys of `domain` valid now (fetching when nothing fresh is cached). */
  async keysFor(domain: string): Promise<VerifyingKey[]> {
    const now = this.now();
    let entry = this.memory.get(domain);
    if (entry === undefined || entry.fetchedAt + this.options.ttlMs <= now) {
      const stored = await loadPeerKeys(this.options.db, domain);
      if (stored && stored.fetchedAt + this.options.ttlMs > now) {
        entry = stored;
        this.memory.set(domain, entry);
      } else {
        const stale = entry ?? stored;
        try {
          entry = await this.fetch(domain);
        } catch (error) {
          // An expired list still beats none while the peer's gateway is unreachable from here:
          // its keys carry their own validity, which is still checked.
          if (stale === undefined) throw error;
          entry = stale;
        }
      }
    }
    return valid(entry, this.now());
  }

  /**
   * Refetches `domain`'s keys after a signature matched none of them; returns the new valid keys,
   * or undefined when a refetch happened too recently.
   */
  async refresh(domain: string): Promise<VerifyingKey[] | undefined> {
    const now = this.now();
    const last = this.lastForced.get(domain);
    if (last !== undefined && now - last < this.options.refetchMs) return undefined;
    this.lastForced.set(domain, now);
    return valid(await this.fetch(domain), this.now());
  }

  private fetch(domain: string): Promise<Entry> {
    let pending = this.inflight.get(domain);
    if (pending === undefined) {
      pending = this.doFetch(domain).finally(() => this.inflight.delete(domain));
      this.inflight.set(domain, pending);
    }
    return pending;
  }

  private async doFetch(domain: string): Promise<Entry> {
    let response: Awaited<ReturnType<Awaited<ReturnType<PeerClients["get"]>>["getDomainKeys"]>>;
    try {
      const client = await this.options.clients.get(domain);
      response = await client.getDomainKeys({}, { deadlineMs: this.options.fetchTimeoutMs ?? 5000 });
    } catch (error) {
      this.options.logger.warn({ err: error, peer: domain }, "fetching a peer's federation keys failed");
      throw new FederationAuthError(`the federation keys of ${domain} cannot be fetched`, { cause: error });
    }
    if (response.domain !== domain) {
      throw new FederationAuthError(`the gateway of ${domain} answered for ${response.domain}`);
    }
    const keys: CachedPeerKey[] = [];
    for (const k of response.keys) {
      try {
        const key = VerifyingKey.fromBytes(k.publicKey);
        if (!bytesEqual(signatureKeyId(key), k.keyId) || !k.notBefore || !k.notAfter) continue;
        keys.push({ keyId: k.keyId, key, notBefore: k.notBefore, notAfter: k.notAfter });
      } catch {
        // A malformed key is skipped; the others still count.
      }
    }
    const entry = { keys, fetchedAt: this.now() };
    await storePeerKeys(this.options.db, domain, keys, entry.fetchedAt);
    this.memory.set(domain, entry);
    this.options.logger.info({ peer: domain, keys: keys.length }, "peer federation keys fetched");
    return entry;
  }
}

function valid(entry: Entry, now: number): VerifyingKey[] {
  return entry.keys
    .filter((k) => k.notBefore.getTime() <= now && k.notAfter.getTime() > now)
    .map((k) => k.key);
}
