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
  authKey: Uint8Array;
}

/**
 * Opens sealed queue configs (HPKE to the QS queue-config key + the client record's signature).
 * The DS copies a member's sealed config verbatim into every fan-out, so a verified config is
 * cached by its bytes with the record key that verified it: the hot path then costs no HPKE and
 * no signature check. A cached entry only counts while that key still verifies the record's
 * configs (the current auth key, or a replaced one in its grace period).
 */
export class QueueConfigOpener {
  private readonly cache = new Map<string, CacheEntry>();

  constructor(private readonly maxEntries = 100_000) {}

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
    const cacheKey = toHex(sealed);
    const cached = this.cache.get(cacheKey);
    if (cached !== undefined) {
      const keys = sealingKeysOf(toHex(cached.clientId));
      if (keys === undefined) return { kind: "needs-key", clientId: cached.clientId };
      if (keys.some((k) => sameBytes(k, cached.authKey))) return { kind: "open", clientId: cached.clientId };
      this.cache.delete(cacheKey);
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
        this.remember(cacheKey, { clientId: config.clientRecordId, authKey: used as Uint8Array });
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
    this.cache.set(key, entry);
    if (this.cache.size > this.maxEntries) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
  }
}

/** The current auth key and the replaced ones a client record can have. */
const MAX_SEALING_KEYS = 1 + MAX_PREVIOUS_AUTH_KEYS;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
