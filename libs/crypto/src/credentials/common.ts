import { decodeAll, encodeWith, type Reader, type Writer } from "../codec.js";
import { UnsupportedCiphersuiteError } from "../errors.js";
import { fingerprint } from "../hash.js";
import { KdfLabel } from "../labels.js";
import { SIGNATURE_LENGTH, SIGNATURE_PUBLIC_KEY_LENGTH, VerifyingKey } from "../signature.js";

// Shared wire layout of the signed credentials (AS intermediate, client):
//   csr        = version ‖ vec16(payload) ‖ selfSignature
//   credential = version ‖ vec16(payload) ‖ selfSignature ‖ signerFingerprint ‖ signature
// selfSignature = SignWithLabel(subject key, "<Type>Csr", payload) proves possession of the key;
// signature = SignWithLabel(signer key, "<Type>", everything before it). The signer adds its own
// fingerprint, so a CSR does not need to know which intermediate will sign it.

/** The only credential ciphersuite: Ed25519 signatures, SHA-256 fingerprints. */
export const CREDENTIAL_CIPHERSUITE = 1;
/** Length of a credential fingerprint. */
export const FINGERPRINT_LENGTH = 32;
export const CREDENTIAL_VERSION = 1;
const MAX_PAYLOAD = 2048;

export function writeSuite(w: Writer): void {
  w.u16(CREDENTIAL_CIPHERSUITE);
}

export function readSuite(r: Reader): void {
  const suite = r.u16("ciphersuite");
  if (suite !== CREDENTIAL_CIPHERSUITE)
    throw new UnsupportedCiphersuiteError(`credential ciphersuite ${suite}`);
}

export function writePublicKey(w: Writer, key: VerifyingKey): void {
  w.fixed(key.bytes, SIGNATURE_PUBLIC_KEY_LENGTH, "publicKey");
}

export function readPublicKey(r: Reader): VerifyingKey {
  const raw = r.fixed("publicKey", SIGNATURE_PUBLIC_KEY_LENGTH);
  try {
    return VerifyingKey.fromBytes(raw);
  } catch {
    return r.fail("publicKey", "not an Ed25519 public key");
  }
}

/** Fingerprint of a credential: SHA-256 over a label and its full encoding. */
export function credentialFingerprint(encoded: Uint8Array): Uint8Array {
  return fingerprint(KdfLabel.CredentialFingerprint, encoded);
}

export interface CsrParts {
  payload: Uint8Array;
  selfSignature: Uint8Array;
}

export interface SignedParts extends CsrParts {
  signerFingerprint: Uint8Array;
  signature: Uint8Array;
  /** The bytes the signer signed (the encoding without the final signature). */
  tbs: Uint8Array;
}

export function encodeCsr(parts: CsrParts): Uint8Array {
  return encodeWith((w) =>
    w
      .u8(CREDENTIAL_VERSION)
      .vec(parts.payload, 2, "payload", { max: MAX_PAYLOAD })
      .fixed(parts.selfSignature, SIGNATURE_LENGTH, "selfSignature"),
  );
}

export function decodeCsr(bytes: Uint8Array, struct: string): CsrParts {
  return decodeAll(bytes, struct, (r) => {
    r.version([CREDENTIAL_VERSION]);
    return {
      payload: r.vec("payload", 2, { max: MAX_PAYLOAD }),
      selfSignature: r.fixed("selfSignature", SIGNATURE_LENGTH),
    };
  });
}

export function signedTbs(csr: CsrParts, signerFingerprint: Uint8Array): Uint8Array {
  const encoded = encodeCsr(csr);
  return encodeWith((w) =>
    w.fixed(encoded, encoded.length).fixed(signerFingerprint, FINGERPRINT_LENGTH, "signerFingerprint"),
  );
}

export function encodeSigned(parts: SignedParts): Uint8Array {
  return encodeWith((w) =>
    w.fixed(parts.tbs, parts.tbs.length).fixed(parts.signature, SIGNATURE_LENGTH, "signature"),
  );
}

export function decodeSigned(bytes: Uint8Array, struct: string): SignedParts {
  return decodeAll(bytes, struct, (r) => {
    r.version([CREDENTIAL_VERSION]);
    const payload = r.vec("payload", 2, { max: MAX_PAYLOAD });
    const selfSignature = r.fixed("selfSignature", SIGNATURE_LENGTH);
    const signerFingerprint = r.fixed("signerFingerprint", FINGERPRINT_LENGTH);
    const tbs = bytes.slice(0, bytes.length - r.remaining);
    const signature = r.fixed("signature", SIGNATURE_LENGTH);
    return { payload, selfSignature, signerFingerprint, signature, tbs };
  });
}
