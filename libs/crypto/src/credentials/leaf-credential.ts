import { aeadOpen, aeadSeal, generateAeadKey } from "../aead.js";
import { bytesEqual, randomBytes } from "../bytes.js";
import { decodeAll, encodeWith } from "../codec.js";
import { FingerprintMismatchError, InvalidInputError, ValidityOutsideSignerError } from "../errors.js";
import { AeadLabel, SignatureLabel } from "../labels.js";
import { SIGNATURE_LENGTH, type SigningKey, type VerifyingKey } from "../signature.js";
import type { ClientCredential } from "./client-credential.js";
import {
  CREDENTIAL_VERSION,
  FINGERPRINT_LENGTH,
  readPublicKey,
  readSuite,
  writePublicKey,
  writeSuite,
} from "./common.js";
import { checkValidAt, type Expiration, isWithin, readExpiration, writeExpiration } from "./expiration.js";

/** Default length of a fresh pseudonymous leaf identity. */
export const LEAF_IDENTITY_LENGTH = 16;
const MAX_IDENTITY = 64;
const MAX_ENCRYPTED_SIGNATURE = 256;

/**
 * A per-group leaf credential, carried as the identity of an MLS Basic credential. Public part:
 * a random pseudonym, expiry and the leaf's signature key. The client credential's signature over
 * it, together with that credential's fingerprint, is encrypted under a fresh per-leaf signature
 * encryption key, so the DS (which sees every leaf) cannot link leaves of one client across groups.
 * Group members receive the signature encryption key and the client credential encrypted under
 * the group's credential encryption key.
 *
 * Encoding: version ‖ vec16(payload) ‖ vec16(encryptedSignature),
 * payload = vec8(identity) ‖ expiration ‖ ciphersuite ‖ publicKey,
 * encryptedSignature = AEAD(sigEncKey, "LeafSignature", signerFingerprint ‖ signature, aad = payload),
 * signature = SignWithLabel(client key, "LeafCredential", vec16(payload) ‖ signerFingerprint).
 */
export class LeafCredential {
  private constructor(
    /** The per-group pseudonym. */
    readonly identity: Uint8Array,
    readonly expiration: Expiration,
    /** The leaf's (MLS) signature key. */
    readonly verifyingKey: VerifyingKey,
    /** The exact encoding: the MLS Basic credential's identity bytes. */
    readonly bytes: Uint8Array,
    private readonly payload: Uint8Array,
    private readonly encryptedSignature: Uint8Array,
  ) {}

  /**
   * Client side: creates a leaf credential for `leafKey`, signed by the client credential's key.
   * Returns it with the signature encryption key (fresh unless given).
   */
  static issue(options: {
    clientKey: SigningKey;
    clientCredential: ClientCredential;
    leafKey: VerifyingKey;
    expiration: Expiration;
    identity?: Uint8Array;
    signatureEncryptionKey?: Uint8Array;
  }): { leaf: LeafCredential; signatureEncryptionKey: Uint8Array } {
    const { clientKey, clientCredential, expiration } = options;
    if (!clientKey.verifyingKey.equals(clientCredential.verifyingKey)) {
      throw new InvalidInputError("client key does not match the client credential");
    }
    if (!isWithin(expiration, clientCredential.expiration)) {
      throw new ValidityOutsideSignerError("leaf validity exceeds the client credential's");
    }
    const identity = options.identity ?? randomBytes(LEAF_IDENTITY_LENGTH);
    const signatureEncryptionKey = options.signatureEncryptionKey ?? generateAeadKey();
    const payload = encodeWith((w) => {
      w.vec(identity, 1, "identity", { min: 1, max: MAX_IDENTITY });
      writeExpiration(w, expiration);
      writeSuite(w);
      writePublicKey(w, options.leafKey);
    });
    const signature = clientKey.sign(
      SignatureLabel.LeafCredential,
      leafTbs(payload, clientCredential.fingerprint),
    );
    const secret = encodeWith((w) =>
      w.fixed(clientCredential.fingerprint, FINGERPRINT_LENGTH).fixed(signature, SIGNATURE_LENGTH),
    );
    const encryptedSignature = aeadSeal(signatureEncryptionKey, AeadLabel.LeafSignature, secret, payload);
    const bytes = encodeWith((w) =>
      w.u8(CREDENTIAL_VERSION).vec(payload, 2, "payload").vec(encryptedSignature, 2, "encryptedSignature"),
    );
    return { leaf: LeafCredential.decode(bytes), signatureEncryptionKey };
  }

  /** Decodes MLS Basic credential identity bytes (structure only). */
  static decode(bytes: Uint8Array): LeafCredential {
    return decodeAll(bytes, "LeafCredential", (r) => {
      r.version([CREDENTIAL_VERSION]);
      const payload = r.vec("payload", 2, { max: 512 });
      const encryptedSignature = r.vec("encryptedSignature", 2, { max: MAX_ENCRYPTED_SIGNATURE });
      const p = decodeAll(payload, "LeafCredential.payload", (pr) => {
        const identity = pr.vec("identity", 1, { min: 1, max: MAX_IDENTITY });
        const expiration = readExpiration(pr);
        readSuite(pr);
        return { identity, expiration, verifyingKey: readPublicKey(pr) };
      });
      return new LeafCredential(
        p.identity,
        p.expiration,
        p.verifyingKey,
        bytes.slice(),
        payload,
        encryptedSignature,
      );
    });
  }

  /**
   * Member side: decrypts the hidden signature with `signatureEncryptionKey` and checks that
   * `clientCredential` signed this leaf, that the leaf's validity lies within the credential's and
   * that it is valid at `now`. Does NOT verify the client credential's chain (CredentialVerifier
   * does both). Throws DecryptionError, FingerprintMismatchError, BadSignatureError,
   * ValidityOutsideSignerError, ExpiredCredentialError or NotYetValidCredentialError.
   */
  verifyWith(
    clientCredential: ClientCredential,
    signatureEncryptionKey: Uint8Array,
    now: number = Date.now(),
  ): void {
    const secret = aeadOpen(
      signatureEncryptionKey,
      AeadLabel.LeafSignature,
      this.encryptedSignature,
      this.payload,
    );
    const { signerFingerprint, signature } = decodeAll(secret, "LeafSignature", (r) => ({
      signerFingerprint: r.fixed("signerFingerprint", FINGERPRINT_LENGTH),
      signature: r.fixed("signature", SIGNATURE_LENGTH),
    }));
    if (!bytesEqual(signerFingerprint, clientCredential.fingerprint)) {
      throw new FingerprintMismatchError("leaf credential was signed by another client credential");
    }
    clientCredential.verifyingKey.verifyOrThrow(
      SignatureLabel.LeafCredential,
      leafTbs(this.payload, signerFingerprint),
      signature,
      "leaf credential",
    );
    if (!isWithin(this.expiration, clientCredential.expiration)) {
      throw new ValidityOutsideSignerError("leaf validity exceeds the client credential's");
    }
    checkValidAt(this.expiration, now, "leaf credential");
  }
}

function leafTbs(payload: Uint8Array, signerFingerprint: Uint8Array): Uint8Array {
  return encodeWith((w) => w.vec(payload, 2, "payload").fixed(signerFingerprint, FINGERPRINT_LENGTH));
}
