/** Base class of every error this package throws, so callers can map all of them in one place. */
export class CryptoError extends Error {
  override name = "CryptoError";
}

/** Bytes that do not decode: bad length, trailing bytes, value out of range. `field` names the culprit. */
export class DecodeError extends CryptoError {
  override name = "DecodeError";
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

/** A versioned structure carries a version byte this build does not know. */
export class UnsupportedVersionError extends DecodeError {
  override name = "UnsupportedVersionError";
  constructor(
    field: string,
    readonly version: number,
  ) {
    super(field, `unsupported version ${version}`);
  }
}

/** A value handed to an encoder or key constructor does not fit its field (wrong key size, too long). */
export class InvalidInputError extends CryptoError {
  override name = "InvalidInputError";
}

/** A signature does not verify under the expected key and label. */
export class BadSignatureError extends CryptoError {
  override name = "BadSignatureError";
}

/** AEAD or HPKE decryption failed: wrong key, wrong label/AAD, or tampered ciphertext. */
export class DecryptionError extends CryptoError {
  override name = "DecryptionError";
}

/** A signed envelope's timestamp is older than the allowed window (stale or replayed). */
export class StaleTimestampError extends CryptoError {
  override name = "StaleTimestampError";
}

/** A signed envelope's timestamp lies further in the future than the allowed clock skew. */
export class FutureTimestampError extends CryptoError {
  override name = "FutureTimestampError";
}

/** The same signed envelope was presented twice inside its validity window. */
export class ReplayError extends CryptoError {
  override name = "ReplayError";
}

/** A credential (or other object with a lifetime) is past its `notAfter`. */
export class ExpiredCredentialError extends CryptoError {
  override name = "ExpiredCredentialError";
}

/** A credential (or other object with a lifetime) is before its `notBefore`. */
export class NotYetValidCredentialError extends CryptoError {
  override name = "NotYetValidCredentialError";
}

/** A credential's fingerprint is on the revocation list. */
export class RevokedCredentialError extends CryptoError {
  override name = "RevokedCredentialError";
}

/** The signer fingerprint of a credential names no credential we trust. */
export class UnknownSignerError extends CryptoError {
  override name = "UnknownSignerError";
}

/** A credential's domain differs from the domain of the AS credential that signed it. */
export class DomainMismatchError extends CryptoError {
  override name = "DomainMismatchError";
}

/** A signed credential's validity period reaches outside its signer's validity period. */
export class ValidityOutsideSignerError extends CryptoError {
  override name = "ValidityOutsideSignerError";
}

/** A fingerprint binding does not hold (a leaf credential not signed by the presented client credential). */
export class FingerprintMismatchError extends CryptoError {
  override name = "FingerprintMismatchError";
}

/** A credential or object names a ciphersuite this build does not support. */
export class UnsupportedCiphersuiteError extends CryptoError {
  override name = "UnsupportedCiphersuiteError";
}

/** Queue ratchet: a message older than the receiver's position (its key is already deleted). */
export class StaleSequenceError extends CryptoError {
  override name = "StaleSequenceError";
}

/** Queue ratchet: a gap larger than the receiver tolerates. */
export class SequenceGapError extends CryptoError {
  override name = "SequenceGapError";
}

/** Queue ratchet: a key update was lost, so no later message can be decrypted. */
export class MissedKeyUpdateError extends CryptoError {
  override name = "MissedKeyUpdateError";
}

/** How a service should answer a request that failed with this error. */
export type CryptoErrorCategory = "invalid-argument" | "unauthenticated" | "failed-precondition" | "internal";

/**
 * Classifies an error thrown by this package for the error→status mapping (libs/runtime):
 * malformed input → invalid-argument; signatures, credentials, timestamps, replays and failed
 * decryption → unauthenticated; queue ratchet position problems → failed-precondition.
 */
export function classifyCryptoError(error: unknown): CryptoErrorCategory {
  if (
    error instanceof DecodeError ||
    error instanceof InvalidInputError ||
    error instanceof UnsupportedCiphersuiteError
  ) {
    return "invalid-argument";
  }
  if (
    error instanceof StaleSequenceError ||
    error instanceof SequenceGapError ||
    error instanceof MissedKeyUpdateError
  ) {
    return "failed-precondition";
  }
  if (error instanceof CryptoError) return "unauthenticated";
  return "internal";
}
