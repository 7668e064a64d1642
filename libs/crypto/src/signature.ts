import type { KeyObject } from "node:crypto";
import { toHex, utf8 } from "./bytes.js";
import { encodeWith } from "./codec.js";
import {
  ED25519_PUBLIC_KEY_LENGTH,
  ED25519_SIGNATURE_LENGTH,
  ed25519FromSeed,
  ed25519Generate,
  ed25519PublicKey,
  ed25519Sign,
  ed25519Verify,
} from "./ed25519.js";
import { BadSignatureError, InvalidInputError } from "./errors.js";
import { keyId, LABEL_PREFIX } from "./hash.js";
import { KeyCache } from "./key-cache.js";
import { KdfLabel } from "./labels.js";

export {
  ED25519_PUBLIC_KEY_LENGTH as SIGNATURE_PUBLIC_KEY_LENGTH,
  ED25519_SIGNATURE_LENGTH as SIGNATURE_LENGTH,
};

/**
 * The signed bytes of a labelled signature, like MLS SignContent:
 * vec8("Phoenix " + label) ‖ vec32(content). The length prefixes make (label, content) pairs
 * unambiguous, so no signature under one label can be read as a signature under another.
 */
export function signContent(label: string, content: Uint8Array): Uint8Array {
  if (label.length === 0) throw new InvalidInputError("signature label must not be empty");
  return encodeWith((w) => w.vec(utf8(LABEL_PREFIX + label), 1, "label").vec(content, 4, "content"));
}

/** An Ed25519 signing key held as a cached node:crypto KeyObject. */
export class SigningKey {
  private constructor(
    private readonly privateKey: KeyObject,
    private readonly seed: Uint8Array,
    /** The matching verifying key (raw 32-byte public key on the wire). */
    readonly verifyingKey: VerifyingKey,
  ) {}

  /** A fresh random key. */
  static generate(): SigningKey {
    const kp = ed25519Generate();
    return new SigningKey(kp.privateKey, kp.seed, VerifyingKey.fromBytes(kp.publicKey));
  }

  /** Restores a key from its 32-byte RFC 8032 seed. */
  static fromSeed(seed: Uint8Array): SigningKey {
    const kp = ed25519FromSeed(seed);
    return new SigningKey(kp.privateKey, kp.seed, VerifyingKey.fromBytes(kp.publicKey));
  }

  /** The raw public key. */
  get publicKey(): Uint8Array {
    return this.verifyingKey.bytes;
  }

  /** The 32-byte seed, for storage by its owner. Treat as secret. */
  exportSeed(): Uint8Array {
    return this.seed.slice();
  }

  /** SignWithLabel: Ed25519 over signContent(label, content). */
  sign(label: string, content: Uint8Array): Uint8Array {
    return ed25519Sign(this.privateKey, signContent(label, content));
  }
}

const verifyingKeyCache = new KeyCache<VerifyingKey>(4096);

/** An Ed25519 verifying key; imports are cached so a hot key is parsed once. */
export class VerifyingKey {
  private constructor(
    private readonly keyObject: KeyObject,
    /** The raw 32-byte public key. */
    readonly bytes: Uint8Array,
  ) {}

  /** Imports a raw 32-byte public key (cached, LRU). Throws InvalidInputError on a bad length or point. */
  static fromBytes(raw: Uint8Array): VerifyingKey {
    if (!(raw instanceof Uint8Array) || raw.length !== ED25519_PUBLIC_KEY_LENGTH) {
      throw new InvalidInputError(`signature public key must be ${ED25519_PUBLIC_KEY_LENGTH} bytes`);
    }
    return verifyingKeyCache.getOrCreate(raw, () => {
      let keyObject: KeyObject;
      try {
        keyObject = ed25519PublicKey(raw);
      } catch {
        throw new InvalidInputError("invalid Ed25519 public key");
      }
      return new VerifyingKey(keyObject, raw.slice());
    });
  }

  /** VerifyWithLabel; false on any mismatch. */
  verify(label: string, content: Uint8Array, signature: Uint8Array): boolean {
    return ed25519Verify(this.keyObject, signContent(label, content), signature);
  }

  /** VerifyWithLabel; throws BadSignatureError naming `what` on mismatch. */
  verifyOrThrow(label: string, content: Uint8Array, signature: Uint8Array, what: string = label): void {
    if (!this.verify(label, content, signature)) throw new BadSignatureError(`bad signature on ${what}`);
  }

  /** True if both keys are the same public key. */
  equals(other: VerifyingKey): boolean {
    return toHex(this.bytes) === toHex(other.bytes);
  }
}

/** The 16-byte key id of a signature public key (e.g. a domain's federation signing keys). */
export function signatureKeyId(key: VerifyingKey): Uint8Array {
  return keyId(KdfLabel.SignatureKeyId, key.bytes);
}
