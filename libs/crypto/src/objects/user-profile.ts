import { aeadOpen, aeadSeal, generateAeadKey } from "../aead.js";
import { constantTimeEqual } from "../bytes.js";
import { decodeAll, encodeWith } from "../codec.js";
import { type UserId, writeUserId } from "../credentials/ids.js";
import { decryptAtRest, encryptAtRest } from "../ear.js";
import { DecryptionError } from "../errors.js";
import { expandWithLabel } from "../hash.js";
import { AeadLabel, KdfLabel } from "../labels.js";

/**
 * User profile encryption. A user's profile (display name, avatar…) is stored on its AS encrypted
 * under the user's profile key; the AS files it under the key index, a value derived from the key
 * (so clients can ask for "the profile under this key" and notice a stale key, while the index
 * reveals nothing about the key). Friends get the profile key in the friendship package; group
 * members get it encrypted under the group's profile-key encryption key.
 *
 * Encrypted profile: version ‖ keyIndex (32) ‖ vec32(EAR ciphertext, padded, aad = keyIndex ‖ userId).
 */

const VERSION = 1;
/** Padding buckets for profiles (avatars make them large). */
export const PROFILE_BUCKETS: readonly number[] = [1024, 4096, 16384, 65536, 262144, 1048576];

/** A fresh user profile key. */
export function generateUserProfileKey(): Uint8Array {
  return generateAeadKey();
}

function userIdBytes(userId: UserId): Uint8Array {
  return encodeWith((w) => writeUserId(w, userId));
}

/** The key index under which a profile encrypted with `key` is stored. */
export function userProfileKeyIndex(key: Uint8Array, userId: UserId): Uint8Array {
  return expandWithLabel(key, KdfLabel.UserProfileKeyIndex, userIdBytes(userId), 32);
}

/** Encrypts a profile; returns the key index (for the AS) and the encrypted profile. */
export function encryptUserProfile(
  key: Uint8Array,
  userId: UserId,
  profile: Uint8Array,
): { keyIndex: Uint8Array; encrypted: Uint8Array } {
  const keyIndex = userProfileKeyIndex(key, userId);
  const aad = encodeWith((w) => w.fixed(keyIndex, 32).vec(userIdBytes(userId), 2, "userId"));
  const ciphertext = encryptAtRest(key, AeadLabel.UserProfile, profile, { aad, buckets: PROFILE_BUCKETS });
  return {
    keyIndex,
    encrypted: encodeWith((w) =>
      w.u8(VERSION).fixed(keyIndex, 32, "keyIndex").vec(ciphertext, 4, "ciphertext"),
    ),
  };
}

/** Decrypts a profile; DecryptionError if it was encrypted under another key or for another user. */
export function decryptUserProfile(key: Uint8Array, userId: UserId, encrypted: Uint8Array): Uint8Array {
  const { keyIndex, ciphertext } = decodeAll(encrypted, "EncryptedUserProfile", (r) => {
    r.version([VERSION]);
    return { keyIndex: r.fixed("keyIndex", 32), ciphertext: r.vec("ciphertext", 4) };
  });
  if (!constantTimeEqual(keyIndex, userProfileKeyIndex(key, userId))) {
    throw new DecryptionError("user profile is encrypted under another profile key");
  }
  const aad = encodeWith((w) => w.fixed(keyIndex, 32).vec(userIdBytes(userId), 2, "userId"));
  return decryptAtRest(key, AeadLabel.UserProfile, ciphertext, { aad });
}

/** Encrypts a member's profile key under the group's profile-key encryption key. */
export function encryptUserProfileKey(
  groupKey: Uint8Array,
  userId: UserId,
  profileKey: Uint8Array,
): Uint8Array {
  return aeadSeal(groupKey, AeadLabel.UserProfileKey, profileKey, userIdBytes(userId));
}

/** Decrypts encryptUserProfileKey's output. */
export function decryptUserProfileKey(
  groupKey: Uint8Array,
  userId: UserId,
  encrypted: Uint8Array,
): Uint8Array {
  return decodeAll(
    aeadOpen(groupKey, AeadLabel.UserProfileKey, encrypted, userIdBytes(userId)),
    "UserProfileKey",
    (r) => r.fixed("key", 32),
  );
}
