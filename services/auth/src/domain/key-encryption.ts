import {
  bytesEqual,
  CryptoError,
  decryptAtRest,
  encryptAtRest,
  expandWithLabel,
  toHex,
} from "@phoenix/crypto";
import { AsKeyConfigError, decodeKeyText } from "./as-keys.js";

/**
 * AEAD label of AS signing keys encrypted at rest. Not (yet) in libs/crypto's label registry;
 * distinct from every label there, so no other ciphertext opens as a signing key.
 */
export const SIGNING_KEY_AEAD_LABEL = "AsSigningKeyAtRest";
/** Derivation label of a key-encryption key's id (the id reveals nothing about the key). */
const KEK_ID_LABEL = "AsKeyEncryptionKeyId";
const KEK_LENGTH = 32;
/** A 32-byte seed plus the padding header fits one 64-byte bucket. */
const SEED_BUCKETS = [64] as const;

/** A stored signing key: the seed, or its ciphertext with the id of the key it is sealed under. */
export interface StoredSigningKey {
  signingKey: Uint8Array;
  /** Null: `signingKey` is a plaintext seed. */
  signingKeyKekId: Uint8Array | null;
}

interface Kek {
  key: Uint8Array;
  id: Uint8Array;
}

function kekOf(text: string, variable: string): Kek {
  const key = decodeKeyText(text, variable);
  if (key.length !== KEK_LENGTH)
    throw new AsKeyConfigError(`${variable} must be a 32-byte key (hex or base64)`);
  return { key, id: expandWithLabel(key, KEK_ID_LABEL, new Uint8Array(0), 16) };
}

/**
 * Encryption at rest of the AS signing keys kept in the database (intermediates, and a root the AS
 * made itself) under AS_KEY_ENCRYPTION_KEY, with libs/crypto's encryptAtRest. Each ciphertext is
 * bound to its credential's fingerprint (AAD), so sealed keys cannot be swapped between rows. An
 * optional previous key lets the operator rotate the key-encryption key: rows under it are opened
 * and resealed under the current one at start.
 */
export class KeyEncryption {
  private readonly current: Kek;
  private readonly previous: Kek | undefined;

  constructor(currentText: string, previousText?: string) {
    this.current = kekOf(currentText, "AS_KEY_ENCRYPTION_KEY");
    this.previous =
      previousText === undefined ? undefined : kekOf(previousText, "AS_KEY_ENCRYPTION_KEY_PREVIOUS");
  }

  /** Seals `seed` of the credential with `fingerprint` under the current key. */
  seal(seed: Uint8Array, fingerprint: Uint8Array): StoredSigningKey {
    return {
      signingKey: encryptAtRest(this.current.key, SIGNING_KEY_AEAD_LABEL, seed, {
        aad: fingerprint,
        buckets: SEED_BUCKETS,
      }),
      signingKeyKekId: this.current.id,
    };
  }

  /** True when `stored` is sealed under the current key (nothing to reseal). */
  isCurrent(stored: StoredSigningKey): boolean {
    return stored.signingKeyKekId !== null && bytesEqual(stored.signingKeyKekId, this.current.id);
  }

  /** The configured key (current or previous) with `id`, if any. */
  keyFor(id: Uint8Array): Uint8Array | undefined {
    if (bytesEqual(id, this.current.id)) return this.current.key;
    if (this.previous && bytesEqual(id, this.previous.id)) return this.previous.key;
    return undefined;
  }
}

/**
 * The seed of a stored signing key. A plaintext seed needs no key; a sealed one needs the
 * configured key it names, else the AS refuses to start (AsKeyConfigError) rather than silently
 * replacing its credentials.
 */
export function openStoredKey(
  stored: StoredSigningKey,
  fingerprint: Uint8Array,
  encryption: KeyEncryption | undefined,
): Uint8Array {
  if (stored.signingKeyKekId === null) return stored.signingKey;
  const what = `the signing key of AS credential ${toHex(fingerprint).slice(0, 16)}…`;
  if (!encryption) {
    throw new AsKeyConfigError(`${what} is encrypted at rest, but AS_KEY_ENCRYPTION_KEY is not set`);
  }
  const key = encryption.keyFor(stored.signingKeyKekId);
  if (!key) {
    throw new AsKeyConfigError(
      `${what} is encrypted under a key that is neither AS_KEY_ENCRYPTION_KEY nor AS_KEY_ENCRYPTION_KEY_PREVIOUS`,
    );
  }
  try {
    return decryptAtRest(key, SIGNING_KEY_AEAD_LABEL, stored.signingKey, { aad: fingerprint });
  } catch (error) {
    if (error instanceof CryptoError)
      throw new AsKeyConfigError(`${what} does not decrypt: ${error.message}`);
    throw error;
  }
}
