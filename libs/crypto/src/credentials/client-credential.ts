import { toHex } from "../bytes.js";
import { decodeAll, encodeWith } from "../codec.js";
import { DomainMismatchError, InvalidInputError, ValidityOutsideSignerError } from "../errors.js";
import { SignatureLabel } from "../labels.js";
import type { SigningKey, VerifyingKey } from "../signature.js";
import type { AsIntermediateCredential } from "./as-credentials.js";
import {
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
import { type ClientId, readClientId, writeClientId } from "./ids.js";

function encodeClientPayload(clientId: ClientId, expiration: Expiration, key: VerifyingKey): Uint8Array {
  return encodeWith((w) => {
    writeClientId(w, clientId);
    writeExpiration(w, expiration);
    writeSuite(w);
    writePublicKey(w, key);
  });
}

function decodeClientPayload(payload: Uint8Array, struct: string) {
  return decodeAll(payload, struct, (r) => {
    const clientId = readClientId(r);
    const expiration = readExpiration(r);
    readSuite(r);
    return { clientId, expiration, verifyingKey: readPublicKey(r) };
  });
}

/** A client's signing request (sent to its AS at registration). */
export class ClientCredentialCsr {
  private constructor(
    readonly clientId: ClientId,
    readonly expiration: Expiration,
    readonly verifyingKey: VerifyingKey,
    readonly bytes: Uint8Array,
    /** @internal */ readonly payload: Uint8Array,
    /** @internal */ readonly selfSignature: Uint8Array,
  ) {}

  /** Creates a CSR binding `clientId` to `key`. */
  static create(key: SigningKey, clientId: ClientId, expiration: Expiration): ClientCredentialCsr {
    const payload = encodeClientPayload(clientId, expiration, key.verifyingKey);
    const selfSignature = key.sign(SignatureLabel.ClientCredentialCsr, payload);
    return ClientCredentialCsr.decode(encodeCsr({ payload, selfSignature }));
  }

  /** Decodes a CSR (structure only). */
  static decode(bytes: Uint8Array): ClientCredentialCsr {
    const parts = decodeCsr(bytes, "ClientCredentialCsr");
    const p = decodeClientPayload(parts.payload, "ClientCredentialCsr.payload");
    return new ClientCredentialCsr(
      p.clientId,
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
      SignatureLabel.ClientCredentialCsr,
      this.payload,
      this.selfSignature,
      "client credential CSR",
    );
  }
}

/**
 * A client credential: binds a ClientId (client uuid + user uuid@domain) to the client's signature
 * key, signed by an AS intermediate credential of the same domain.
 */
export class ClientCredential {
  readonly fingerprint: Uint8Array;

  private constructor(
    readonly clientId: ClientId,
    readonly expiration: Expiration,
    readonly verifyingKey: VerifyingKey,
    /** Fingerprint of the AS intermediate credential that signed this one. */
    readonly signerFingerprint: Uint8Array,
    readonly bytes: Uint8Array,
    private readonly parts: SignedParts,
  ) {
    this.fingerprint = credentialFingerprint(bytes);
  }

  /**
   * AS side: signs `csr` with the intermediate key. Refuses a bad proof of possession, a client of
   * another domain and a validity outside the intermediate's.
   */
  static issue(
    intermediateKey: SigningKey,
    intermediate: AsIntermediateCredential,
    csr: ClientCredentialCsr,
  ): ClientCredential {
    if (!intermediateKey.verifyingKey.equals(intermediate.verifyingKey)) {
      throw new InvalidInputError("intermediate key does not match intermediate credential");
    }
    csr.verifySelfSignature();
    if (csr.clientId.userId.domain !== intermediate.domain) {
      throw new DomainMismatchError(
        `client of ${csr.clientId.userId.domain} cannot be signed by ${intermediate.domain}`,
      );
    }
    if (!isWithin(csr.expiration, intermediate.expiration)) {
      throw new ValidityOutsideSignerError("client credential validity exceeds the intermediate's");
    }
    const tbs = signedTbs(
      { payload: csr.payload, selfSignature: csr.selfSignature },
      intermediate.fingerprint,
    );
    const signature = intermediateKey.sign(SignatureLabel.ClientCredential, tbs);
    return ClientCredential.decode(
      encodeSigned({
        payload: csr.payload,
        selfSignature: csr.selfSignature,
        signerFingerprint: intermediate.fingerprint,
        signature,
        tbs,
      }),
    );
  }

  /** Decodes (structure only: verify through a CredentialVerifier before trusting it). */
  static decode(bytes: Uint8Array): ClientCredential {
    const parts = decodeSigned(bytes, "ClientCredential");
    const p = decodeClientPayload(parts.payload, "ClientCredential.payload");
    return new ClientCredential(
      p.clientId,
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
      SignatureLabel.ClientCredentialCsr,
      this.parts.payload,
      this.parts.selfSignature,
      "client credential (self-signature)",
    );
    signer.verifyOrThrow(
      SignatureLabel.ClientCredential,
      this.parts.tbs,
      this.parts.signature,
      "client credential",
    );
  }

  get id(): string {
    return toHex(this.fingerprint);
  }
}
