import { bytesEqual, toHex, utf8 } from "./bytes.js";
import { decryptAtRest, encryptAtRest } from "./ear.js";
import { CryptoError } from "./errors.js";
import { expandWithLabel } from "./hash.js";
import { KdfLabel } from "./labels.js";

/** A key-encryption key is missing, malformed, or does not open what the database holds. */
export class KeyEncryptionError extends CryptoError {
  override name = "KeyEncryptionError";
}

/** Length of a key-encryption key. */
export const KEY_ENCRYPTION_KEY_LENGTH = 32;
/** A 32-byte seed plus the padding header fits one 64-byte bucket. */
const SEED_BUCKETS = [64] as const;

/**
 * Decodes a secret given as hex or base64 text (an environment variable); KeyEncryptionError
 * naming `variable` when it is neither.
 */
export function decodeKeyText(text: string, variable: string): Uint8Array {
  const trimmed = text.trim();
  if (/^[0-9a-fA-F]+$/.test(trimmed) && trimmed.length % 2 === 0)
    return new Uint8Array(Buffer.from(trimmed, "hex"));
  if (/^[A-Za-z0-9+/_-]+=*$/.test(trimmed)) return new Uint8Array(Buffer.from(trimmed, "base64"));
  throw new KeyEncryptionError(`${variable} is neither hex nor base64`);
}

/** A key stored in a database row: sealed (with the id of its key-encryption key) or, from before encryption, plain. */
export interface StoredKey {
  /** The ciphertext, or the plain seed when `kekId` is null. */
  bytes: Uint8Array;
  /** Id of the key-encryption key that sealed `bytes`; null: `bytes` is plaintext. */
  kekId: Uint8Array | null;
}

/** How one service names and labels its key encryption. */
export interface KeyEncryptionPurpose {
  /** AEAD label of the sealed keys (distinct per service: no ciphertext opens for another). */
  aeadLabel: string;
  /** Derivation label of the key ids stored beside the ciphertexts. */
  kekIdLabel: string;
  /** The variable holding the current key, e.g. AS_KEY_ENCRYPTION_KEY (`_PREVIOUS`: the old one). */
  variable: string;
}

interface Kek {
  key: Uint8Array;
  id: Uint8Array;
}

/**
 * A service's key-encryption keys: the current one from a secret, and optionally the previous one
 * while the operator rotates. Seals the private keys a service keeps in its database (a
 * snapshot of the database alone then yields no key), each bound to its row by associated data
 * so sealed keys cannot be swapped between rows. Rows sealed under the previous key, or stored
 * in plaintext by an older version, are resealed under the current key at start by the caller.
 */
export class KeyEncryptionKeys {
  private readonly current: Kek;
  private readonly previous: Kek | undefined;

  constructor(
    private readonly purpose: KeyEncryptionPurpose,
    currentText: string,
    previousText?: string | undefined,
  ) {
    this.current = this.kekOf(currentText, purpose.variable);
    this.previous =
      previousText === undefined ? undefined : this.kekOf(previousText, `${purpose.variable}_PREVIOUS`);
  }

  private kekOf(text: string, variable: string): Kek {
    const key = decodeKeyText(text, variable);
    if (key.length !== KEY_ENCRYPTION_KEY_LENGTH)
      throw new KeyEncryptionError(`${variable} must be a 32-byte key (hex or base64)`);
    return { key, id: expandWithLabel(key, this.purpose.kekIdLabel, new Uint8Array(0), 16) };
  }

  /** Seals `seed` (at most 32 bytes) bound to `aad` (the row's identity) under the current key. */
  seal(seed: Uint8Array, aad: Uint8Array): StoredKey {
    return {
      bytes: encryptAtRest(this.current.key, this.purpose.aeadLabel, seed, { aad, buckets: SEED_BUCKETS }),
      kekId: this.current.id,
    };
  }

  /** True when `stored` is sealed under the current key (nothing to reseal). */
  isCurrent(stored: StoredKey): boolean {
    return stored.kekId !== null && bytesEqual(stored.kekId, this.current.id);
  }

  /**
   * Opens a stored key: a plaintext one as it is, a sealed one with the configured key it names.
   * KeyEncryptionError (naming `what` and the variables) when no configured key opens it: the
   * service must then refuse to start rather than replace its keys.
   */
  open(stored: StoredKey, aad: Uint8Array, what: string): Uint8Array {
    if (stored.kekId === null) return stored.bytes;
    const { variable } = this.purpose;
    const kek = [this.current, this.previous].find((k) => k && bytesEqual(k.id, stored.kekId as Uint8Array));
    if (!kek) {
      throw new KeyEncryptionError(
        `${what} is encrypted under a key that is neither ${variable} nor ${variable}_PREVIOUS ` +
          `(key id ${toHex(stored.kekId).slice(0, 8)}…)`,
      );
    }
    try {
      return decryptAtRest(kek.key, this.purpose.aeadLabel, stored.bytes, { aad });
    } catch (error) {
      if (error instanceof CryptoError)
        throw new KeyEncryptionError(`${what} does not decrypt: ${error.message}`);
      throw error;
    }
  }

  /**
   * The replay-marker keys of `service` derived from the key-encryption keys (current first, then
   * the previous one), so markers need no secret of their own and still mean nothing to someone
   * holding only the database.
   */
  replayMarkerKeys(service: string): Uint8Array[] {
    return [this.current, this.previous]
      .filter((k): k is Kek => k !== undefined)
      .map((k) => deriveReplayMarkerKey(k.key, service));
  }
}

/** The replay-marker key of `service` derived from a 32-byte service secret (HKDF-Expand, own label). */
export function deriveReplayMarkerKey(secret: Uint8Array, service: string): Uint8Array {
  return expandWithLabel(secret, KdfLabel.ReplayMarkerKey, utf8(service), 32);
}
