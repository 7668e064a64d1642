import {
  BadSignatureError,
  CryptoError,
  openQueueConfig,
  queueConfigKeyId,
  toHex,
  UnknownSignerError,
  VerifyingKey,
} from "@phoenix/crypto";
import type { ConfigKey } from "./key-ring.js";
import { MAX_PREVIOUS_AUTH_KEYS } from "./limits.js";

/** The usable queue-config key with this id (libs/crypto `hpkeKeyId`), if any. */
export type ConfigKeyLookup = (keyId: Uint8Array) => ConfigKey | undefined;

/** What opening a sealed queue config found. */
export type OpenResult =
  | { kind: "open"; clientId: Uint8Array }
  /** Decrypted, but the record key is needed to check the signature. */
  | { kind: "needs-key"; clientId: Uint8Array }
  /** Not for us, tampered, sealed to an expired key, or signed by another key. */
  | { kind: "invalid" };

interface CacheEntry {
  clientId: Uint8Array;
  clientIdHex: string;
  authKey: Uint8Array;
  lastUsed: number;
}

/** Bounds of the opened-config cache. */
export interface OpenerCacheLimits {
  /** Most configs kept (the least recently used goes first). */
  maxEntries: number;
  /** A config not used for this long is forgotten. */
  maxIdleMs: number;
  /** The clock (tests). */
  now?: () => number;
}

/** Default bounds: a deployment's active members, forgotten after 15 idle minutes. */
export const DEFAULT_OPENER_CACHE: OpenerCacheLimits = { maxEntries: 100_000, maxIdleMs: 15 * 60_000 };

/**
 * Opens sealed queue configs (HPKE to the QS queue-config key + the client record's signature).
 * The DS copies a member's sealed config verbatim into every fan-out, so a verified config is
 * cached by its exact bytes with the client id it names and the record key that verified it: the
 * hot path then costs no HPKE and no signature check. A cached entry only counts while that key
 * still verifies the record's configs (the current auth key, or a replaced one in its grace
 * period). The cache holds nothing the QS does not see while it processes a fan-out naming that
 * config (sealed bytes → pseudonymous client id, no key and no message), and only for a bounded
 * number of configs and a bounded idle time (docs/security.md).
 */
export class QueueConfigOpener {
  /** In least-recently-used order (a hit moves its entry to the end). */
  private readonly cache = new Map<string, CacheEntry>();
  private readonly limits: Required<OpenerCacheLimits>;

  constructor(limits: Partial<OpenerCacheLimits> = {}) {
    this.limits = { ...DEFAULT_OPENER_CACHE, now: Date.now, ...limits };
  }

  /** Number of cached configs (tests, metrics). */
  get size(): number {
    return this.cache.size;
  }

  /**
   * Opens `sealed` with the queue-config key it names (`keyOf`: none or retired past its grace →
   * invalid). `sealingKeysOf` gives the keys that may have signed a client's configs, current
   * first, when known (else "needs-key" comes back; call again once they are loaded).
   */
  open(
    sealed: Uint8Array,
    keyOf: ConfigKeyLookup,
    sealingKeysOf: (clientIdHex: string) => readonly Uint8Array[] | undefined,
  ): OpenResult {
    const now = this.limits.now();
    this.forgetIdle(now);
    // The exact bytes, one character per byte: cheaper to build and hash than hex.
    const cacheKey = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength).toString("latin1");
    const cached = this.cache.get(cacheKey);
    if (cached !== undefined) {
      const keys = sealingKeysOf(cached.clientIdHex);
      if (keys === undefined) return { kind: "needs-key", clientId: cached.clientId };
      this.cache.delete(cacheKey);
      if (keys.some((k) => sameBytes(k, cached.authKey))) {
        cached.lastUsed = now;
        this.cache.set(cacheKey, cached);
        return { kind: "open", clientId: cached.clientId };
      }
    }
    let key: ConfigKey | undefined;
    try {
      key = keyOf(queueConfigKeyId(sealed));
    } catch (error) {
      if (error instanceof CryptoError) return { kind: "invalid" };
      throw error;
    }
    if (key === undefined) return { kind: "invalid" };
    // The signature is checked inside openQueueConfig, so each candidate record key costs one
    // HPKE open; only configs sealed before an auth-key change need a second, and are cached.
    for (let attempt = 0; attempt < MAX_SEALING_KEYS; attempt++) {
      let seen: Uint8Array | undefined;
      let used: Uint8Array | undefined;
      let more = false;
      try {
        const config = openQueueConfig(key.pair, sealed, (clientId) => {
          seen = clientId;
          const keys = sealingKeysOf(toHex(clientId));
          used = keys?.[attempt];
          more = keys !== undefined && attempt + 1 < keys.length;
          return used === undefined ? undefined : VerifyingKey.fromBytes(used);
        });
        this.remember(cacheKey, {
          clientId: config.clientRecordId,
          clientIdHex: toHex(config.clientRecordId),
          authKey: used as Uint8Array,
          lastUsed: now,
        });
        return { kind: "open", clientId: config.clientRecordId };
      } catch (error) {
        if (error instanceof UnknownSignerError && seen !== undefined && attempt === 0) {
          return { kind: "needs-key", clientId: seen };
        }
        if (error instanceof BadSignatureError && more) continue;
        if (error instanceof CryptoError) return { kind: "invalid" };
        throw error;
      }
    }
    return { kind: "invalid" };
  }

  /** Forgets every cached config (after a key rotation retired a key). */
  clear(): void {
    this.cache.clear();
  }

  private remember(key: string, entry: CacheEntry): void {
    this.cache.delete(key);
    this.cache.set(key, entry);
    if (this.cache.size > this.limits.maxEntries) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
  }

  /** Drops the entries idle for longer than the limit (the oldest are first in the map). */
  private forgetIdle(now: number): void {
    for (const [key, entry] of this.cache) {
      if (now - entry.lastUsed <= this.limits.maxIdleMs) return;
      this.cache.delete(key);
    }
  }
}

/** The current auth key and the replaced ones a client record can have. */
const MAX_SEALING_KEYS = 1 + MAX_PREVIOUS_AUTH_KEYS;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
