import { toHex } from "../bytes.js";
import {
  DomainMismatchError,
  RevokedCredentialError,
  UnknownSignerError,
  ValidityOutsideSignerError,
} from "../errors.js";
import type { AsCredential, AsIntermediateCredential } from "./as-credentials.js";
import type { ClientCredential } from "./client-credential.js";
import { checkValidAt, isWithin } from "./expiration.js";
import type { LeafCredential } from "./leaf-credential.js";

/**
 * Trust store and chain verifier for the credential PKI:
 * AS root (trusted per domain) → AS intermediate → client credential → leaf credential.
 * Every failure has its own error: UnknownSignerError, BadSignatureError, RevokedCredentialError,
 * DomainMismatchError, ValidityOutsideSignerError, ExpiredCredentialError,
 * NotYetValidCredentialError, FingerprintMismatchError, DecryptionError.
 * Revocation and expiry are re-checked along the whole chain on every verification, so revoking an
 * intermediate invalidates every client credential it signed.
 */
export class CredentialVerifier {
  private readonly roots = new Map<string, AsCredential>();
  private readonly intermediates = new Map<string, AsIntermediateCredential>();
  private readonly revoked = new Set<string>();
  private readonly clock: () => number;

  constructor(options: { revoked?: Iterable<Uint8Array>; now?: () => number } = {}) {
    for (const fp of options.revoked ?? []) this.revoked.add(toHex(fp));
    this.clock = options.now ?? Date.now;
  }

  /** Adds a trusted AS root credential (obtained out of band or from the domain's AS). */
  addRoot(root: AsCredential, now: number = this.clock()): void {
    this.checkRoot(root, now);
    this.roots.set(root.id, root);
  }

  /** Verifies an intermediate against the known roots and remembers it. */
  addIntermediate(intermediate: AsIntermediateCredential, now: number = this.clock()): void {
    this.verifyIntermediate(intermediate, now);
    this.intermediates.set(intermediate.id, intermediate);
  }

  /** Adds a fingerprint to the revocation list. */
  revoke(fingerprint: Uint8Array): void {
    this.revoked.add(toHex(fingerprint));
  }

  /** True if the fingerprint is revoked. */
  isRevoked(fingerprint: Uint8Array): boolean {
    return this.revoked.has(toHex(fingerprint));
  }

  /** The known intermediate with this fingerprint, if any (e.g. to know which ones to fetch). */
  hasSigner(fingerprint: Uint8Array): boolean {
    return this.intermediates.has(toHex(fingerprint)) || this.roots.has(toHex(fingerprint));
  }

  /** Verifies an intermediate credential's chain at `now`. */
  verifyIntermediate(intermediate: AsIntermediateCredential, now: number = this.clock()): void {
    const root = this.roots.get(toHex(intermediate.signerFingerprint));
    if (!root) throw new UnknownSignerError("AS intermediate credential signed by an unknown AS credential");
    this.checkRoot(root, now);
    intermediate.verifySignatures(root.verifyingKey);
    this.checkRevoked(intermediate.fingerprint, "AS intermediate credential");
    if (intermediate.domain !== root.domain) {
      throw new DomainMismatchError(
        `intermediate of ${intermediate.domain} signed by the AS of ${root.domain}`,
      );
    }
    if (!isWithin(intermediate.expiration, root.expiration)) {
      throw new ValidityOutsideSignerError("intermediate validity exceeds the AS credential's");
    }
    checkValidAt(intermediate.expiration, now, "AS intermediate credential");
  }

  /** Verifies a client credential's chain at `now`; returns it for chaining. */
  verifyClientCredential(credential: ClientCredential, now: number = this.clock()): ClientCredential {
    const intermediate = this.intermediates.get(toHex(credential.signerFingerprint));
    if (!intermediate) throw new UnknownSignerError("client credential signed by an unknown AS intermediate");
    // Signatures of stored roots and intermediates were verified when they were added; their
    // revocation and validity can change and are re-checked every time.
    this.checkStoredChain(intermediate, now);
    credential.verifySignatures(intermediate.verifyingKey);
    this.checkRevoked(credential.fingerprint, "client credential");
    if (credential.clientId.userId.domain !== intermediate.domain) {
      throw new DomainMismatchError(
        `client of ${credential.clientId.userId.domain} signed by the AS of ${intermediate.domain}`,
      );
    }
    if (!isWithin(credential.expiration, intermediate.expiration)) {
      throw new ValidityOutsideSignerError("client credential validity exceeds the intermediate's");
    }
    checkValidAt(credential.expiration, now, "client credential");
    return credential;
  }

  /** Verifies a leaf credential against its client credential (decrypting the hidden signature) and the chain. */
  verifyLeafCredential(
    leaf: LeafCredential,
    clientCredential: ClientCredential,
    signatureEncryptionKey: Uint8Array,
    now: number = this.clock(),
  ): void {
    this.verifyClientCredential(clientCredential, now);
    leaf.verifyWith(clientCredential, signatureEncryptionKey, now);
  }

  private checkStoredChain(intermediate: AsIntermediateCredential, now: number): void {
    const root = this.roots.get(toHex(intermediate.signerFingerprint));
    if (!root) throw new UnknownSignerError("AS intermediate credential signed by an unknown AS credential");
    this.checkRevoked(root.fingerprint, "AS credential");
    checkValidAt(root.expiration, now, "AS credential");
    this.checkRevoked(intermediate.fingerprint, "AS intermediate credential");
    checkValidAt(intermediate.expiration, now, "AS intermediate credential");
  }

  private checkRoot(root: AsCredential, now: number): void {
    root.verifySelfSignature();
    this.checkRevoked(root.fingerprint, "AS credential");
    checkValidAt(root.expiration, now, "AS credential");
  }

  private checkRevoked(fingerprint: Uint8Array, what: string): void {
    if (this.revoked.has(toHex(fingerprint))) throw new RevokedCredentialError(`${what} is revoked`);
  }
}
