import {
  concat,
  decryptAtRest,
  encryptAtRest,
  expandWithLabel,
  hmacSha256,
  OUTBOX_PAYLOAD,
  PayloadSealer,
  utf8,
} from "@phoenix/crypto";

/**
 * Labels of what the QS encrypts at rest or hashes under its storage key. Each use has its own
 * label, so a ciphertext or hash made for one purpose is useless for another.
 */
export const StorageLabel = {
  KeyWrap: "QsKeyWrap",
  RatchetState: "QsRatchetState",
  PushToken: "QsPushToken",
  AddPackage: "QsAddPackage",
  FriendshipToken: "QsFriendshipToken",
} as const;
export type StorageLabel = (typeof StorageLabel)[keyof typeof StorageLabel];

/** Purposes of the keyed hashes that replace DS-visible identifiers in the QS tables. */
export const HashPurpose = {
  FriendshipTokenLookup: "QsFriendshipTokenLookup",
  FanOutMarker: "QsFanOutMarker",
  BlocklistEntry: "QsBlocklistEntry",
  SeenRequest: "QsSeenRequest",
  /** A queue's push collapse id: stable per queue, unlinkable to it for the push provider. */
  PushCollapse: "QsPushCollapse",
} as const;
export type HashPurpose = (typeof HashPurpose)[keyof typeof HashPurpose];

const EMPTY = new Uint8Array(0);
/** Small fixed-size secrets (ratchet states, tokens) share one bucket. */
const SMALL_BUCKETS = [128, 4096];

/**
 * Everything derived from the QS storage key (a 32-byte secret from the operator's secrets, never
 * stored in the database): the encryption-at-rest key and the keys of the lookup hashes. A
 * snapshot of the database alone opens none of them.
 */
export class StorageKeys {
  private readonly earKey: Uint8Array;
  private readonly hashKeys = new Map<HashPurpose, Uint8Array>();
  /** Seals the QS's outbox rows (outbound federation fan-outs, queue-deleted reports). */
  readonly outbox: PayloadSealer;

  constructor(root: Uint8Array) {
    if (root.length !== 32) throw new RangeError("the QS storage key must be 32 bytes");
    this.outbox = new PayloadSealer(OUTBOX_PAYLOAD, "QS_STORAGE_KEY", root);
    this.earKey = expandWithLabel(root, "QsEncryptionAtRest", EMPTY, 32);
    for (const purpose of Object.values(HashPurpose)) {
      this.hashKeys.set(purpose, expandWithLabel(root, purpose, EMPTY, 32));
    }
  }

  /** Encrypts `plaintext` at rest, bound to its row by `aad`. */
  seal(label: StorageLabel, plaintext: Uint8Array, aad: Uint8Array, small = true): Uint8Array {
    return encryptAtRest(this.earKey, label, plaintext, small ? { aad, buckets: SMALL_BUCKETS } : { aad });
  }

  /** Decrypts {@link seal}'s output; throws DecryptionError when it was not sealed here for `aad`. */
  open(label: StorageLabel, ciphertext: Uint8Array, aad: Uint8Array): Uint8Array {
    return decryptAtRest(this.earKey, label, ciphertext, { aad });
  }

  /** A keyed hash of `parts` for one purpose (deterministic, unreadable without the storage key). */
  hash(purpose: HashPurpose, ...parts: Uint8Array[]): Uint8Array {
    const key = this.hashKeys.get(purpose) as Uint8Array;
    return hmacSha256(key, concat(...parts.flatMap((p) => [u32(p.length), p])));
  }
}

function u32(n: number): Uint8Array {
  return Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

/** UTF-8 helper for hash parts. */
export function text(value: string): Uint8Array {
  return utf8(value);
}
