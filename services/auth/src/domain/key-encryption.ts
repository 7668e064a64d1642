import { AeadLabel, KdfLabel, KeyEncryptionKeys, toHex } from "@phoenix/crypto";

/** AEAD label of AS signing keys encrypted at rest (distinct from every other label). */
export const SIGNING_KEY_AEAD_LABEL = AeadLabel.AsSigningKeyAtRest;

/** A stored signing key: the seed, or its ciphertext with the id of the key it is sealed under. */
export interface StoredSigningKey {
  signingKey: Uint8Array;
  /** Null: `signingKey` is a plaintext seed (written by a version before encryption was required). */
  signingKeyKekId: Uint8Array | null;
}

/**
 * Encryption at rest of the AS signing keys kept in the database (intermediates, and a root the AS
 * made itself) under AS_KEY_ENCRYPTION_KEY, with libs/crypto's KeyEncryptionKeys. Each ciphertext
 * is bound to its credential's fingerprint (AAD), so sealed keys cannot be swapped between rows.
 * AS_KEY_ENCRYPTION_KEY_PREVIOUS lets the operator rotate: rows under it are resealed at start.
 */
export class KeyEncryption {
  readonly keys: KeyEncryptionKeys;

  constructor(currentText: string, previousText?: string) {
    this.keys = new KeyEncryptionKeys(
      {
        aeadLabel: SIGNING_KEY_AEAD_LABEL,
        kekIdLabel: KdfLabel.AsKeyEncryptionKeyId,
        variable: "AS_KEY_ENCRYPTION_KEY",
      },
      currentText,
      previousText,
    );
  }

  /** Seals `seed` of the credential with `fingerprint` under the current key. */
  seal(seed: Uint8Array, fingerprint: Uint8Array): StoredSigningKey {
    const { bytes, kekId } = this.keys.seal(seed, fingerprint);
    return { signingKey: bytes, signingKeyKekId: kekId };
  }

  /** True when `stored` is sealed under the current key (nothing to reseal). */
  isCurrent(stored: StoredSigningKey): boolean {
    return this.keys.isCurrent({ bytes: stored.signingKey, kekId: stored.signingKeyKekId });
  }

  /** The AS's replay-marker keys, derived from the key-encryption keys (current first). */
  replayMarkerKeys(): Uint8Array[] {
    return this.keys.replayMarkerKeys("auth");
  }
}

/**
 * The seed of a stored signing key. A plaintext seed (from before encryption) is returned as it
 * is, to be resealed; a sealed one needs the configured key it names, else KeyEncryptionError and
 * the AS refuses to start rather than silently replacing its credentials.
 */
export function openStoredKey(
  stored: StoredSigningKey,
  fingerprint: Uint8Array,
  encryption: KeyEncryption,
): Uint8Array {
  return encryption.keys.open(
    { bytes: stored.signingKey, kekId: stored.signingKeyKekId },
    fingerprint,
    `the signing key of AS credential ${toHex(fingerprint).slice(0, 16)}…`,
  );
}
