// The account: everything a registered client holds about itself, stored as one JSON row (hex).
import { fromHex, toHex } from "@phoenix/crypto";

/** The client's own identity and keys (secret: the store is the device's key store). */
export interface Account {
  domain: string;
  userUuid: Uint8Array;
  clientUuid: Uint8Array;
  /** Client credential key (Ed25519 seed) and the credential the AS issued. */
  clientKeySeed: Uint8Array;
  clientCredential: Uint8Array;
  /** HPKE private key of the client's AS connection queue. */
  connectionQueueKey: Uint8Array;
  profileKey: Uint8Array;
  displayName: string;
  /** Own friendship keys (handed to every contact). */
  friendshipToken: Uint8Array;
  friendshipEncryptionKey: Uint8Array;
  /** QS user record and client record. */
  qsUserKeySeed: Uint8Array;
  qsUserId: Uint8Array;
  qsClientKeySeed: Uint8Array;
  qsClientId: Uint8Array;
  qsQueueKey: Uint8Array;
  /** The QS queue-config encryption key (public) the queue config is sealed to. */
  qsConfigKey: Uint8Array;
}

const BYTE_FIELDS = [
  "userUuid",
  "clientUuid",
  "clientKeySeed",
  "clientCredential",
  "connectionQueueKey",
  "profileKey",
  "friendshipToken",
  "friendshipEncryptionKey",
  "qsUserKeySeed",
  "qsUserId",
  "qsClientKeySeed",
  "qsClientId",
  "qsQueueKey",
  "qsConfigKey",
] as const;

/** JSON form of an account (bytes as hex). */
export function accountToJson(a: Account): Record<string, string> {
  const out: Record<string, string> = { domain: a.domain, displayName: a.displayName };
  for (const f of BYTE_FIELDS) out[f] = toHex(a[f]);
  return out;
}

/** Inverse of {@link accountToJson}. */
export function accountFromJson(j: Record<string, string>): Account {
  const bytes = Object.fromEntries(BYTE_FIELDS.map((f) => [f, fromHex(j[f] ?? "")])) as Record<
    (typeof BYTE_FIELDS)[number],
    Uint8Array
  >;
  return { ...bytes, domain: j.domain ?? "", displayName: j.displayName ?? "" };
}
