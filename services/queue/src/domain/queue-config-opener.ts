import {
  CryptoError,
  openQueueConfig,
  queueConfigKeyId,
  toHex,
  UnknownSignerError,
  VerifyingKey,
} from "@phoenix/crypto";
import type { ConfigKey } from "./key-ring.js";

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
 * no signature check. A cached entry only counts while the record key is unchanged.
 */
export class QueueConfigOpener {
  private readonly cache = new Map<string, CacheEntry>();

  constructor(private readonly maxEntries = 100_000) {}

  /**
   * Opens `sealed` with the queue-config key it names (`keyOf`: none or retired past its grace →
   * invalid). `authKeyOf` gives the record key of a client id when known (else "needs-key" comes
   * back; call again once the key is loaded).
   */
  open(
    sealed: Uint8Array,
    keyOf: ConfigKeyLookup,
    authKeyOf: (clientIdHex: string) => Uint8Array | undefined,
  ): OpenResult {
    const cacheKey = toHex(sealed);
    const cached = this.cache.get(cacheKey);
    if (cached !== undefined) {
      const current = authKeyOf(toHex(cached.clientId));
      if (current === undefined) return { kind: "needs-key", clientId: cached.clientId };
      if (sameBytes(current, cached.authKey)) return { kind: "open", clientId: cached.clientId };
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
    let seen: Uint8Array | undefined;
    let used: Uint8Array | undefined;
    try {
      const config = openQueueConfig(key.pair, sealed, (clientId) => {
        seen = clientId;
        used = authKeyOf(toHex(clientId));
        return used === undefined ? undefined : VerifyingKey.fromBytes(used);
      });
      this.remember(cacheKey, { clientId: config.clientRecordId, authKey: used as Uint8Array });
      return { kind: "open", clientId: config.clientRecordId };
    } catch (error) {
      if (error instanceof UnknownSignerError && seen !== undefined)
        return { kind: "needs-key", clientId: seen };
      if (error instanceof CryptoError) return { kind: "invalid" };
      throw error;
    }
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

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
