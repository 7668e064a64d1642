import {
  DecodeError,
  DecryptionError,
  decodeHpkeCiphertext,
  encodeHpkeCiphertext,
  type HpkeKeyPair,
  type HpkePublicKey,
  hpkeOpen,
  hpkeSeal,
} from "@phoenix/crypto";
import { queue } from "@phoenix/proto";
import { malformed, sizeLimit } from "./errors.js";
import { LIMITS } from "./limits.js";
import { type StorageKeys, StorageLabel } from "./storage-keys.js";

/** HPKE label of a sealed push token (libs/crypto has none yet; see the README). */
export const PUSH_TOKEN_HPKE_LABEL = "PushToken";

/**
 * Client side: seals a PushToken to the QS queue-config encryption key (SealedPushToken =
 * encodeHpkeCiphertext of the HPKE-sealed `queue.PushToken` encoding).
 */
export function sealPushToken(qsKey: HpkePublicKey, token: queue.PushToken): Uint8Array {
  return encodeHpkeCiphertext(hpkeSeal(qsKey, PUSH_TOKEN_HPKE_LABEL, queue.PushToken.encode(token).finish()));
}

/**
 * QS side: opens a sealed push token with the first key that opens it and validates it.
 * Throws INVALID_ARGUMENT naming `field` when it does not open or is not a usable token.
 */
export function openSealedPushToken(
  keys: readonly HpkeKeyPair[],
  sealed: Uint8Array,
  field: string,
): queue.PushToken {
  let ciphertext: ReturnType<typeof decodeHpkeCiphertext>;
  try {
    ciphertext = decodeHpkeCiphertext(sealed);
  } catch {
    throw malformed(field, "is not a sealed push token");
  }
  for (const key of keys) {
    let plaintext: Uint8Array;
    try {
      plaintext = hpkeOpen(key, PUSH_TOKEN_HPKE_LABEL, ciphertext);
    } catch (error) {
      if (error instanceof DecryptionError || error instanceof DecodeError) continue;
      throw error;
    }
    return validatePushToken(plaintext, field);
  }
  throw malformed(field, "does not open with the QS queue-config key");
}

/** Decodes and checks a PushToken plaintext. */
export function validatePushToken(plaintext: Uint8Array, field: string): queue.PushToken {
  let token: queue.PushToken;
  try {
    token = queue.PushToken.decode(plaintext);
  } catch {
    throw malformed(field, "the sealed content is not a PushToken");
  }
  if (
    token.provider !== queue.PushProvider.PUSH_PROVIDER_WEBHOOK &&
    token.provider !== queue.PushProvider.PUSH_PROVIDER_FCM &&
    token.provider !== queue.PushProvider.PUSH_PROVIDER_APNS
  ) {
    throw malformed(`${field}.provider`, "unknown push provider");
  }
  if (token.token.length === 0) throw malformed(`${field}.token`, "empty");
  if (token.token.length > LIMITS.pushTokenText) {
    throw malformed(`${field}.token`, `longer than ${LIMITS.pushTokenText} characters`);
  }
  if (token.provider === queue.PushProvider.PUSH_PROVIDER_WEBHOOK) {
    let url: URL;
    try {
      url = new URL(token.token);
    } catch {
      throw malformed(`${field}.token`, "a webhook token must be a URL");
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw malformed(`${field}.token`, "a webhook URL must be http(s)");
    }
  }
  return token;
}

/**
 * The at-rest form of a sealed push token from a request: opened (so a bad token is refused
 * now, not at notification time) and re-encrypted under the storage key, bound to the client.
 * Empty input: no token (null).
 */
export function pushTokenAtRest(
  storage: StorageKeys,
  keys: readonly HpkeKeyPair[],
  sealed: Uint8Array,
  clientId: Uint8Array,
  field: string,
): Uint8Array | null {
  if (sealed.length === 0) return null;
  if (sealed.length > LIMITS.sealedPushToken) throw sizeLimit(field, LIMITS.sealedPushToken, sealed.length);
  const token = openSealedPushToken(keys, sealed, field);
  return storage.seal(StorageLabel.PushToken, queue.PushToken.encode(token).finish(), clientId);
}

/** Decrypts a stored push token. */
export function openPushToken(
  storage: StorageKeys,
  encrypted: Uint8Array,
  clientId: Uint8Array,
): queue.PushToken {
  return queue.PushToken.decode(storage.open(StorageLabel.PushToken, encrypted, clientId));
}
