/**
 * Every reason the DS public-group validator refuses a message. All extend PublicGroupError, so a
 * service can map the whole family to a gRPC status in one place; each subclass names one rule.
 */
export class PublicGroupError extends Error {
  override name = "PublicGroupError";
}

/** The bytes are not a well-formed MLS message of the expected kind. */
export class MalformedMessageError extends PublicGroupError {
  override name = "MalformedMessageError";
}

/** The message is for another group. */
export class WrongGroupError extends PublicGroupError {
  override name = "WrongGroupError";
}

/** The message is for another epoch than the group's current one. */
export class WrongEpochError extends PublicGroupError {
  override name = "WrongEpochError";
  constructor(
    readonly expected: bigint,
    readonly actual: bigint,
  ) {
    super(`message is for epoch ${actual}, group is at epoch ${expected}`);
  }
}

/** The message has the wrong content type or wire format for the call (e.g. a proposal given as a commit). */
export class UnexpectedContentError extends PublicGroupError {
  override name = "UnexpectedContentError";
}

/** The sender is not a member (blank or out-of-range leaf, unknown external sender) or may not send this. */
export class UnknownSenderError extends PublicGroupError {
  override name = "UnknownSenderError";
}

/** A signature (on the framed content, a leaf node or the GroupInfo) does not verify. */
export class BadSignatureError extends PublicGroupError {
  override name = "BadSignatureError";
}

/**
 * The framed-content signature does not verify on a message that carries authenticated data.
 * The signature covers the AAD, so a rewritten AAD and a forged signature look alike; both are
 * BadSignatureErrors and must be treated as unauthenticated.
 */
export class TamperedAadError extends BadSignatureError {
  override name = "TamperedAadError";
}

/** The committer's GroupInfo is not signed by the leaf it names. */
export class BadGroupInfoSignatureError extends BadSignatureError {
  override name = "BadGroupInfoSignatureError";
}

/** A leaf node in an Update proposal or UpdatePath is not signed by its own signature key. */
export class BadLeafSignatureError extends BadSignatureError {
  override name = "BadLeafSignatureError";
}

/** A KeyPackage (or the leaf node inside it) is not signed by its own signature key. */
export class BadKeyPackageSignatureError extends BadSignatureError {
  override name = "BadKeyPackageSignatureError";
}

/** A KeyPackage is unusable here: wrong ciphersuite or version, or init key equal to its encryption key. */
export class BadKeyPackageError extends PublicGroupError {
  override name = "BadKeyPackageError";
}

/** A leaf node breaks a structural rule: wrong source, unsupported capabilities or extensions. */
export class BadLeafNodeError extends PublicGroupError {
  override name = "BadLeafNodeError";
}

/** A KeyPackage leaf node is outside its lifetime. */
export class ExpiredLeafNodeError extends BadLeafNodeError {
  override name = "ExpiredLeafNodeError";
}

/** The credential callback refused a leaf's credential. */
export class CredentialRejectedError extends PublicGroupError {
  override name = "CredentialRejectedError";
}

/** An HPKE encryption key or signature key would appear twice in the tree. */
export class DuplicateLeafKeyError extends PublicGroupError {
  override name = "DuplicateLeafKeyError";
  constructor(
    readonly keyKind: "encryption" | "signature",
    message: string,
  ) {
    super(message);
  }
}

/** A Remove proposal names a blank (or out-of-range) leaf. */
export class EmptyLeafRemovalError extends PublicGroupError {
  override name = "EmptyLeafRemovalError";
}

/** A commit references a proposal the validator has not seen in this epoch. */
export class UnknownProposalError extends PublicGroupError {
  override name = "UnknownProposalError";
}

/** The proposal list breaks an RFC 9420 §12.2 rule (duplicates, removing the committer, …). */
export class InvalidProposalError extends PublicGroupError {
  override name = "InvalidProposalError";
}

/** A proposal type Phoenix does not allow (PreSharedKey, ReInit, custom types). */
export class UnsupportedProposalError extends PublicGroupError {
  override name = "UnsupportedProposalError";
}

/** The commit needs an UpdatePath and has none. */
export class MissingUpdatePathError extends PublicGroupError {
  override name = "MissingUpdatePathError";
}

/** The UpdatePath is malformed: wrong length, reused keys, wrong ciphertext count or a parent-hash mismatch. */
export class BadUpdatePathError extends PublicGroupError {
  override name = "BadUpdatePathError";
}

/** An external commit breaks RFC 9420 §12.4.3.2 (ExternalInit count, proposals by reference, resync identity). */
export class InvalidExternalCommitError extends PublicGroupError {
  override name = "InvalidExternalCommitError";
}

/** The committer's GroupInfo does not describe the state the validator computed. */
export class GroupInfoMismatchError extends PublicGroupError {
  override name = "GroupInfoMismatchError";
}

/** A ratchet tree given to create the validator is inconsistent (structure, hashes, keys). */
export class InvalidTreeError extends PublicGroupError {
  override name = "InvalidTreeError";
}

/** Serialised validator state cannot be decoded. */
export class StateDecodeError extends PublicGroupError {
  override name = "StateDecodeError";
}
