/**
 * Every label this package signs, derives, encrypts or seals under, in one place. Each structure
 * has its own label, so a signature or ciphertext made for one purpose never verifies or decrypts
 * for another. On the wire every label is prefixed with "Phoenix " (see LABEL_PREFIX).
 */

/** Labels of Ed25519 signatures (SignWithLabel). */
export const SignatureLabel = {
  AsCredential: "AsCredential",
  AsIntermediateCredentialCsr: "AsIntermediateCredentialCsr",
  AsIntermediateCredential: "AsIntermediateCredential",
  ClientCredentialCsr: "ClientCredentialCsr",
  ClientCredential: "ClientCredential",
  LeafCredential: "LeafCredential",
  QueueConfig: "QueueConfig",
  ConnectionPackage: "ConnectionPackage",
  HandleConnectionPackage: "HandleConnectionPackage",
  ConnectionOffer: "ConnectionOffer",
  WelcomeAttributionInfo: "WelcomeAttributionInfo",
} as const;

/** Labels of the key-committing AEAD (encryption at rest and every symmetric object). */
export const AeadLabel = {
  GroupState: "GroupState",
  LeafSignature: "LeafSignature",
  QueueMessage: "QueueMessage",
  AddPackageClientCredential: "AddPackageClientCredential",
  AddPackageSignatureKey: "AddPackageSignatureKey",
  GroupClientCredential: "GroupClientCredential",
  GroupSignatureKey: "GroupSignatureKey",
  WelcomeAttributionInfo: "WelcomeAttributionInfo",
  UserProfile: "UserProfile",
  UserProfileKey: "UserProfileKey",
  PushToken: "PushToken",
  /** The tree and members of a Welcome's epoch, sealed by the DS into the WelcomeBundle. */
  WelcomeInfo: "WelcomeInfo",
  /** Private keys a service keeps in its database, sealed under its key-encryption key. */
  AsSigningKeyAtRest: "AsSigningKeyAtRest",
  FederationSigningKeyAtRest: "FederationSigningKeyAtRest",
  /** Outbox rows and embedded-bus messages, sealed until relayed or acknowledged. */
  OutboxPayload: "OutboxPayload",
  BusPayload: "BusPayload",
} as const;

/** Labels put into HPKE's `info` (with the "Phoenix " prefix). */
export const HpkeLabel = {
  QueueConfig: "QueueConfig",
  PushToken: "PushToken",
  QueueRatchetInit: "QueueRatchetInit",
  QueueRatchetUpdate: "QueueRatchetUpdate",
  ConnectionOffer: "ConnectionOffer",
} as const;

/** Labels of ExpandWithLabel derivations and fingerprints. */
export const KdfLabel = {
  QueueRatchetMessageKey: "QueueRatchetMessageKey",
  QueueRatchetNext: "QueueRatchetNext",
  QueueRatchetRotation: "QueueRatchetRotation",
  UserProfileKeyIndex: "UserProfileKeyIndex",
  CredentialFingerprint: "CredentialFingerprint",
  ConnectionPackageHash: "ConnectionPackageHash",
  HpkeKeyId: "HpkeKeyId",
  SignatureKeyId: "SignatureKeyId",
  /** Ids of key-encryption keys, stored beside what they sealed (reveal nothing about the key). */
  AsKeyEncryptionKeyId: "AsKeyEncryptionKeyId",
  FederationKeyEncryptionKeyId: "FederationKeyEncryptionKeyId",
  /** A service's replay-marker key, derived from its secret (context: the service name). */
  ReplayMarkerKey: "ReplayMarkerKey",
  /** Sealing keys of outbox rows and embedded-bus messages, derived from a service secret. */
  OutboxPayloadKey: "OutboxPayloadKey",
  BusPayloadKey: "BusPayloadKey",
} as const;
