export * from "./as-credentials.js";
export * from "./client-credential.js";
export { CREDENTIAL_CIPHERSUITE, credentialFingerprint, FINGERPRINT_LENGTH } from "./common.js";
export * from "./expiration.js";
export * from "./ids.js";
export * from "./leaf-credential.js";
export * from "./verifier.js";
