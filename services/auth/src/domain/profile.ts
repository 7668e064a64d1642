import { decodeAll } from "@phoenix/crypto";
import { checking, malformed, tooLarge } from "./errors.js";
import { Limits } from "./limits.js";

const ENCRYPTED_PROFILE_VERSION = 1;

/**
 * Reads the profile key index of a libs/crypto EncryptedUserProfile (version ‖ keyIndex(32) ‖
 * vec32(ciphertext)) and checks its size. The AS files the profile under that index; it cannot
 * and does not decrypt it. libs/crypto has no exported reader for this encoding (its
 * `decryptUserProfile` reads it internally), so the layout is mirrored here.
 */
export function profileKeyIndex(encrypted: Uint8Array, field: string): Uint8Array {
  if (encrypted.length === 0) throw malformed(field, "missing");
  if (encrypted.length > Limits.encryptedUserProfile)
    throw tooLarge(field, Limits.encryptedUserProfile, encrypted.length);
  return checking(field, () =>
    decodeAll(encrypted, "EncryptedUserProfile", (r) => {
      r.version([ENCRYPTED_PROFILE_VERSION]);
      const keyIndex = r.fixed("keyIndex", 32);
      r.vec("ciphertext", 4, { min: 1 });
      return keyIndex;
    }),
  );
}
