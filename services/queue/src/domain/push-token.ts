import { CryptoError, DecodeError, openPushToken } from "@phoenix/crypto";
import { queue } from "@phoenix/proto";
import { malformed, sizeLimit } from "./errors.js";
import type { ConfigKey } from "./key-ring.js";
import { LIMITS } from "./limits.js";
import { type StorageKeys, StorageLabel } from "./storage-keys.js";
import { WebhookAddressPolicy } from "./webhook-address.js";

/**
 * QS side: opens a SealedPushToken (libs/crypto `sealPushToken` of a `queue.PushToken`
 * encoding) and validates it. The sealed token names the queue-config key it was sealed to;
 * libs/crypto refuses every other key on that id before any HPKE work, so only the named key
 * is ever tried. Throws INVALID_ARGUMENT naming `field` when it does not open or is not a
 * usable token.
 */
export function openSealedPushToken(
  keys: readonly ConfigKey[],
  sealed: Uint8Array,
  field: string,
  policy: WebhookAddressPolicy = new WebhookAddressPolicy(),
): queue.PushToken {
  for (const key of keys) {
    let plaintext: Uint8Array;
    try {
      plaintext = openPushToken(key.pair, sealed);
    } catch (error) {
      if (error instanceof DecodeError) throw malformed(field, "is not a sealed push token");
      if (!(error instanceof CryptoError)) throw error;
      continue;
    }
    return validatePushToken(plaintext, field, policy);
  }
  throw malformed(field, "is not sealed to a usable QS queue-config key");
}

/**
 * Decodes and checks a PushToken plaintext. A webhook URL whose host is an IP literal or a
 * loopback name is checked against `policy` now (SSRF: it is refused here rather than at every
 * notification); host names are checked after resolution when a notification goes out.
 */
export function validatePushToken(
  plaintext: Uint8Array,
  field: string,
  policy: WebhookAddressPolicy = new WebhookAddressPolicy(),
): queue.PushToken {
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
  // An APNs device token becomes part of the request path: hex only.
  if (
    token.provider === queue.PushProvider.PUSH_PROVIDER_APNS &&
    !/^(?:[0-9a-fA-F]{2}){16,256}$/.test(token.token)
  ) {
    throw malformed(`${field}.token`, "an APNs device token must be hex");
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
    const refusal = policy.refusalWithoutDns(url);
    if (refusal !== undefined) throw malformed(`${field}.token`, `webhook host refused: ${refusal}`);
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
  keys: readonly ConfigKey[],
  sealed: Uint8Array,
  clientId: Uint8Array,
  field: string,
  policy: WebhookAddressPolicy,
): Uint8Array | null {
  if (sealed.length === 0) return null;
  if (sealed.length > LIMITS.sealedPushToken) throw sizeLimit(field, LIMITS.sealedPushToken, sealed.length);
  const token = openSealedPushToken(keys, sealed, field, policy);
  return storage.seal(StorageLabel.PushToken, queue.PushToken.encode(token).finish(), clientId);
}

/** Decrypts a push token kept at rest. */
export function openStoredPushToken(
  storage: StorageKeys,
  encrypted: Uint8Array,
  clientId: Uint8Array,
): queue.PushToken {
  return queue.PushToken.decode(storage.open(StorageLabel.PushToken, encrypted, clientId));
}
