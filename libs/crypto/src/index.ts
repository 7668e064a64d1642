export * from "./aead.js";
export * from "./aes-gcm.js";
export * from "./bytes.js";
export * from "./codec.js";
export * from "./credentials/index.js";
export * from "./ear.js";
export {
  ED25519_PKCS8_LENGTH,
  ED25519_PUBLIC_KEY_LENGTH,
  ED25519_SEED_LENGTH,
  ED25519_SIGNATURE_LENGTH,
  type Ed25519KeyPair,
  ed25519FromPkcs8,
  ed25519FromSeed,
  ed25519Generate,
  ed25519PublicKey,
  ed25519Sign,
  ed25519Verify,
} from "./ed25519.js";
export * from "./envelope.js";
export * from "./errors.js";
export * from "./hash.js";
export * from "./hpke.js";
export * from "./key-cache.js";
export * from "./key-encryption.js";
export * from "./labels.js";
export * from "./objects/index.js";
export * from "./padding.js";
export * from "./payload-sealer.js";
export * from "./queue-ratchet.js";
export * from "./signature.js";
