import { aeadOpen, aeadSeal, expandWithLabel, sha256 } from "@phoenix/crypto";

// An add-client grant (the result of a password login) is 32 random bytes the client holds. The
// AS keeps its SHA-256, the user, the hour it expires by (for the expiry job) and the exact expiry
// sealed under a key derived from the grant itself: a database copy shows when a grant expires
// only to the hour (see coarse-time.ts), and the AS reads the exact time when the grant is used.

/** Length of a grant. */
export const GRANT_LENGTH = 32;

/** AEAD label of a grant's exact expiry (distinct from every label in libs/crypto's labels.ts). */
export const GRANT_EXPIRY_AEAD_LABEL = "AsAddClientGrantExpiry";
/** Derivation label of the key that seals a grant's exact expiry. */
const GRANT_KEY_KDF_LABEL = "AsAddClientGrantKey";

/** What the AS stores of a grant: its hash (the row's key). */
export function grantHash(grant: Uint8Array): Uint8Array {
  return sha256(grant);
}

function grantKey(grant: Uint8Array): Uint8Array {
  return expandWithLabel(grant, GRANT_KEY_KDF_LABEL, new Uint8Array(0), 32);
}

/** The exact expiry (ms) sealed under the grant, bound to the grant's hash. */
export function sealGrantExpiry(grant: Uint8Array, expiresAtMs: number): Uint8Array {
  const plain = new Uint8Array(8);
  new DataView(plain.buffer).setBigUint64(0, BigInt(expiresAtMs));
  return aeadSeal(grantKey(grant), GRANT_EXPIRY_AEAD_LABEL, plain, grantHash(grant));
}

/** The exact expiry (ms) of `grant`, or undefined when `sealed` does not open under it. */
export function openGrantExpiry(grant: Uint8Array, sealed: Uint8Array): number | undefined {
  try {
    const plain = aeadOpen(grantKey(grant), GRANT_EXPIRY_AEAD_LABEL, sealed, grantHash(grant));
    if (plain.length !== 8) return undefined;
    return Number(new DataView(plain.buffer, plain.byteOffset, 8).getBigUint64(0));
  } catch {
    return undefined;
  }
}
