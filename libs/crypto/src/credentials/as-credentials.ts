import { toHex } from "../bytes.js";
import { decodeAll, encodeWith } from "../codec.js";
import { InvalidInputError, ValidityOutsideSignerError } from "../errors.js";
import { SignatureLabel } from "../labels.js";
import { SIGNATURE_LENGTH, type SigningKey, type VerifyingKey } from "../signature.js";
import {
  CREDENTIAL_VERSION,
  credentialFingerprint,
  decodeCsr,
  decodeSigned,
  encodeCsr,
  encodeSigned,
  readPublicKey,
  readSuite,
  type SignedParts,
  signedTbs,
  writePublicKey,
  writeSuite,
} from "./common.js";
import { type Expiration, isWithin, readExpiration, writeExpiration } from "./expiration.js";
import { readDomain, writeDomain } from "./ids.js";

function encodeAsPayload(domain: string, expiration: Expiration, key: VerifyingKey): Uint8Array {
  return encodeWith((w) => {
    writeDomain(w, domain);
    writeExpiration(w, expiration);
    writeSuite(w);
    writePublicKey(w, key);
  });
}

function decodeAsPayload(payload: Uint8Array, struct: string) {
  return decodeAll(payload, struct, (r) => {
    const domain = readDomain(r);
    const expiration = readExpiration(r);
    readSuite(r);
    return { domain, expiration, verifyingKey: readPublicKey(r) };
  });
}

/**
 * The AS root credential of a domain: long-lived, self-signed (label "AsCredential"), kept
 * offline. Encoding: version ‖ vec16(payload) ‖ signature, payload = domain ‖ expiration ‖
 * ciphersuite ‖ public key.
 */
export class AsCredential {
  /** SHA-256 fingerprint of `bytes`; intermediates name their signer by it. */
  readonly fingerprint: Uint8Array;

  private constructor(
    readonly domain: string,
    readonly expiration: Expiration,
    readonly verifyingKey: VerifyingKey,
    /** The exact encoding (what travels and what the fingerprint covers). */
    readonly bytes: Uint8Array,
    private readonly payload: Uint8Array,
    private readonly signature: Uint8Array,
  ) {
    this.fingerprint = credentialFingerprint(bytes);
  }

  /** Creates and self-signs a root credential for `domain`. */
  static issue(key: SigningKey, domain: string, expiration: Expiration): AsCredential {
    const payload = encodeAsPayload(domain, expiration, key.verifyingKey);
    const signature = key.sign(SignatureLabel.AsCredential, payload);
    return AsCredential.decode(
      encodeWith((w) =>
        w.u8(CREDENTIAL_VERSION).vec(payload, 2, "payload").fixed(signature, SIGNATURE_LENGTH, "signature"),
      ),
    );
  }

  /** Decodes (structure only: call verifySelfSignature or a CredentialVerifier before trusting it). */
  static decode(bytes: Uint8Array): AsCredential {
    const { payload, signature } = decodeAll(bytes, "AsCredential", (r) => {
      r.version([CREDENTIAL_VERSION]);
      return {
        payload: r.vec("payload", 2, { max: 2048 }),
        signature: r.fixed("signature", SIGNATURE_LENGTH),
      };
    });
    const p = decodeAsPayload(payload, "AsCredential.payload");
    return new AsCredential(p.domain, p.expiration, p.verifyingKey, bytes.slice(), payload, signature);
  }

  /** Throws BadSignatureError unless the credential is correctly self-signed. */
  verifySelfSignature(): void {
    this.verifyingKey.verifyOrThrow(
      SignatureLabel.AsCredential,
      this.payload,
      this.signature,
      "AS credential",
    );
  }

  /** Hex fingerprint (map key). */
  get id(): string {
    return toHex(this.fingerprint);
  }
}

/** An AS intermediate's signing request: payload plus proof of possession. */
export class AsIntermediateCsr {
  private constructor(
    readonly domain: string,
    readonly expiration: Expiration,
    readonly verifyingKey: VerifyingKey,
    readonly bytes: Uint8Array,
    /** @internal */ readonly payload: Uint8Array,
    /** @internal */ readonly selfSignature: Uint8Array,
  ) {}

  /** Creates a CSR for the intermediate key `key`. */
  static create(key: SigningKey, domain: string, expiration: Expiration): AsIntermediateCsr {
    const payload = encodeAsPayload(domain, expiration, key.verifyingKey);
    const selfSignature = key.sign(SignatureLabel.AsIntermediateCredentialCsr, payload);
    return AsIntermediateCsr.decode(encodeCsr({ payload, selfSignature }));
  }

  /** Decodes a CSR (structure only). */
  static decode(bytes: Uint8Array): AsIntermediateCsr {
    const parts = decodeCsr(bytes, "AsIntermediateCsr");
    const p = decodeAsPayload(parts.payload, "AsIntermediateCsr.payload");
    return new AsIntermediateCsr(
      p.domain,
      p.expiration,
      p.verifyingKey,
      bytes.slice(),
      parts.payload,
      parts.selfSignature,
    );
  }

  /** Throws BadSignatureError unless the requester holds the key. */
  verifySelfSignature(): void {
    this.verifyingKey.verifyOrThrow(
      SignatureLabel.AsIntermediateCredentialCsr,
      this.payload,
      this.selfSignature,
      "AS intermediate CSR",
    );
  }
}

/** An AS intermediate credential: signed by the AS root, signs client credentials. */
export class AsIntermediateCredential {
  readonly fingerprint: Uint8Array;

  private constructor(
    readonly domain: string,
    readonly expiration: Expiration,
    readonly verifyingKey: VerifyingKey,
    /** Fingerprint of the AS root credential that signed this one. */
    readonly signerFingerprint: Uint8Array,
    readonly bytes: Uint8Array,
    private readonly parts: SignedParts,
  ) {
    this.fingerprint = credentialFingerprint(bytes);
  }

  /** Signs `csr` with the root key; refuses a CSR with a bad self-signature or validity outside the root's. */
  static issue(rootKey: SigningKey, root: AsCredential, csr: AsIntermediateCsr): AsIntermediateCredential {
    if (!rootKey.verifyingKey.equals(root.verifyingKey))
      throw new InvalidInputError("root key does not match root");
    csr.verifySelfSignature();
    if (csr.domain !== root.domain) throw new InvalidInputError("CSR domain differs from the root's");
    if (!isWithin(csr.expiration, root.expiration)) {
      throw new ValidityOutsideSignerError("intermediate validity exceeds the root's");
    }
    const tbs = signedTbs({ payload: csr.payload, selfSignature: csr.selfSignature }, root.fingerprint);
    const signature = rootKey.sign(SignatureLabel.AsIntermediateCredential, tbs);
    return AsIntermediateCredential.decode(
      encodeSigned({
        payload: csr.payload,
        selfSignature: csr.selfSignature,
        signerFingerprint: root.fingerprint,
        signature,
        tbs,
      }),
    );
  }

  /** Decodes (structure only: verify through a CredentialVerifier). */
  static decode(bytes: Uint8Array): AsIntermediateCredential {
    const parts = decodeSigned(bytes, "AsIntermediateCredential");
    const p = decodeAsPayload(parts.payload, "AsIntermediateCredential.payload");
    return new AsIntermediateCredential(
      p.domain,
      p.expiration,
      p.verifyingKey,
      parts.signerFingerprint,
      bytes.slice(),
      parts,
    );
  }

  /** Checks the proof of possession and the signature by `signer`; throws BadSignatureError. */
  verifySignatures(signer: VerifyingKey): void {
    this.verifyingKey.verifyOrThrow(
      SignatureLabel.AsIntermediateCredentialCsr,
      this.parts.payload,
      this.parts.selfSignature,
      "AS intermediate credential (self-signature)",
    );
    signer.verifyOrThrow(
      SignatureLabel.AsIntermediateCredential,
      this.parts.tbs,
      this.parts.signature,
      "AS intermediate credential",
    );
  }

  get id(): string {
    return toHex(this.fingerprint);
  }
}
