import { describe, expect, it } from "vitest";
import { encodeSigned } from "../src/credentials/common.js";
import {
  AsCredential,
  AsIntermediateCredential,
  AsIntermediateCsr,
  BadSignatureError,
  ClientCredential,
  ClientCredentialCsr,
  CredentialVerifier,
  DecodeError,
  DecryptionError,
  DomainMismatchError,
  ExpiredCredentialError,
  FingerprintMismatchError,
  formatClientId,
  generateAeadKey,
  LeafCredential,
  NotYetValidCredentialError,
  parseUserId,
  RevokedCredentialError,
  SigningKey,
  toHex,
  UnknownSignerError,
  ValidityOutsideSignerError,
} from "../src/index.js";
import { DAY, makeClient, makePki, NOW } from "./support/pki.js";

describe("credential chain", () => {
  it("verifies root → intermediate → client and survives a decode round-trip", () => {
    const pki = makePki();
    const decoded = ClientCredential.decode(pki.clientCredential.bytes);
    expect(pki.verifier.verifyClientCredential(decoded).clientId.userId.domain).toBe("alpha.example");
    expect(formatClientId(decoded.clientId)).toBe(
      "0b1c2d3e-4f50-4a6b-8c7d-8e9fa0b1c2d3:11111111-2222-4333-8444-555555555555@alpha.example",
    );
    expect(toHex(decoded.fingerprint)).toBe(toHex(pki.clientCredential.fingerprint));
    const verifier = new CredentialVerifier({ now: () => NOW });
    verifier.addRoot(AsCredential.decode(pki.root.bytes));
    verifier.addIntermediate(AsIntermediateCredential.decode(pki.intermediate.bytes));
    verifier.verifyClientCredential(decoded);
  });

  it("refuses an expired or not yet valid client credential", () => {
    const pki = makePki();
    expect(() => pki.verifier.verifyClientCredential(pki.clientCredential, NOW + 31 * DAY)).toThrow(
      ExpiredCredentialError,
    );
    expect(() => pki.verifier.verifyClientCredential(pki.clientCredential, NOW - 2 * DAY)).toThrow(
      NotYetValidCredentialError,
    );
  });

  it("refuses an expired intermediate even for a client credential still valid", () => {
    const pki = makePki();
    expect(() => pki.verifier.verifyClientCredential(pki.clientCredential, NOW + 400 * DAY)).toThrow(
      ExpiredCredentialError,
    );
  });

  it("refuses revoked client and intermediate credentials", () => {
    const pki = makePki();
    pki.verifier.revoke(pki.clientCredential.fingerprint);
    expect(() => pki.verifier.verifyClientCredential(pki.clientCredential)).toThrow(RevokedCredentialError);
    const other = makePki();
    other.verifier.revoke(other.intermediate.fingerprint);
    expect(() => other.verifier.verifyClientCredential(other.clientCredential)).toThrow(
      RevokedCredentialError,
    );
    const revokedAtStart = new CredentialVerifier({ now: () => NOW, revoked: [other.root.fingerprint] });
    expect(() => revokedAtStart.addRoot(other.root)).toThrow(RevokedCredentialError);
  });

  it("refuses a credential from an unknown signer", () => {
    const alpha = makePki("alpha.example", 1);
    const rogue = makePki("alpha.example", 50);
    expect(() => alpha.verifier.verifyClientCredential(rogue.clientCredential)).toThrow(UnknownSignerError);
    const verifier = new CredentialVerifier({ now: () => NOW });
    expect(() => verifier.addIntermediate(alpha.intermediate)).toThrow(UnknownSignerError);
  });

  it("refuses a tampered signature or payload", () => {
    const pki = makePki();
    const bytes = pki.clientCredential.bytes.slice();
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1;
    expect(() => pki.verifier.verifyClientCredential(ClientCredential.decode(bytes))).toThrow(
      BadSignatureError,
    );
    const payloadFlip = pki.clientCredential.bytes.slice();
    payloadFlip[5] = (payloadFlip[5] as number) ^ 1; // inside the client uuid
    expect(() => pki.verifier.verifyClientCredential(ClientCredential.decode(payloadFlip))).toThrow(
      BadSignatureError,
    );
  });

  it("refuses a client credential of another domain signed by this AS", () => {
    const pki = makePki("alpha.example");
    // The AS's issue() refuses; build the forged credential by hand.
    const beta = makePki("beta.example", 9);
    expect(() =>
      ClientCredential.issue(
        pki.intermediateKey,
        pki.intermediate,
        ClientCredentialCsr.create(beta.clientKey, beta.clientId, { notBefore: NOW, notAfter: NOW + DAY }),
      ),
    ).toThrow(DomainMismatchError);
    const csr = ClientCredentialCsr.create(beta.clientKey, beta.clientId, {
      notBefore: NOW,
      notAfter: NOW + DAY,
    });
    const tbs = new Uint8Array([...csr.bytes, ...pki.intermediate.fingerprint]);
    const forged = ClientCredential.decode(
      encodeSigned({
        payload: csr.payload,
        selfSignature: csr.selfSignature,
        signerFingerprint: pki.intermediate.fingerprint,
        signature: pki.intermediateKey.sign("ClientCredential", tbs),
        tbs,
      }),
    );
    expect(() => pki.verifier.verifyClientCredential(forged)).toThrow(DomainMismatchError);
  });

  it("refuses to issue validity outside the signer's and an intermediate CSR with a foreign key", () => {
    const pki = makePki();
    expect(() =>
      makeClient(pki.intermediateKey, pki.intermediate, "alpha.example", 5, {
        notBefore: NOW,
        notAfter: NOW + 1000 * DAY,
      }),
    ).toThrow(ValidityOutsideSignerError);
    const csr = AsIntermediateCsr.create(SigningKey.generate(), "alpha.example", {
      notBefore: NOW,
      notAfter: NOW + DAY,
    });
    const bytes = csr.bytes.slice();
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1;
    expect(() =>
      AsIntermediateCredential.issue(pki.rootKey, pki.root, AsIntermediateCsr.decode(bytes)),
    ).toThrow(BadSignatureError);
  });

  it("rejects malformed encodings with decode errors", () => {
    const pki = makePki();
    expect(() => ClientCredential.decode(pki.clientCredential.bytes.subarray(1))).toThrow(DecodeError);
    expect(() => AsCredential.decode(new Uint8Array([...pki.root.bytes, 0]))).toThrow(DecodeError);
    expect(() => parseUserId("not-a-user")).toThrow();
  });
});

describe("leaf credentials", () => {
  const pki = makePki();
  const leafKey = SigningKey.generate();
  const validity = { notBefore: NOW - DAY, notAfter: NOW + 7 * DAY };

  it("verifies with the client credential and the signature encryption key", () => {
    const { leaf, signatureEncryptionKey } = LeafCredential.issue({
      clientKey: pki.clientKey,
      clientCredential: pki.clientCredential,
      leafKey: leafKey.verifyingKey,
      expiration: validity,
    });
    const fromMls = LeafCredential.decode(leaf.bytes);
    pki.verifier.verifyLeafCredential(fromMls, pki.clientCredential, signatureEncryptionKey);
    expect(toHex(fromMls.verifyingKey.bytes)).toBe(toHex(leafKey.publicKey));
  });

  it("does not reveal the client credential or its fingerprint to the DS, and leaves are unlinkable", () => {
    const issue = () =>
      LeafCredential.issue({
        clientKey: pki.clientKey,
        clientCredential: pki.clientCredential,
        leafKey: leafKey.verifyingKey,
        expiration: validity,
      }).leaf.bytes;
    const a = Buffer.from(issue());
    const b = Buffer.from(issue());
    for (const secret of [pki.clientCredential.fingerprint, pki.clientCredential.verifyingKey.bytes]) {
      expect(a.includes(Buffer.from(secret))).toBe(false);
    }
    // Same client, same leaf key: the identities and hidden parts still differ.
    expect(a.subarray(3, 19).equals(b.subarray(3, 19))).toBe(false);
    expect(a.subarray(a.length - 100).equals(b.subarray(b.length - 100))).toBe(false);
  });

  it("refuses a wrong signature encryption key, another client credential and expiry", () => {
    const { leaf, signatureEncryptionKey } = LeafCredential.issue({
      clientKey: pki.clientKey,
      clientCredential: pki.clientCredential,
      leafKey: leafKey.verifyingKey,
      expiration: validity,
    });
    expect(() => pki.verifier.verifyLeafCredential(leaf, pki.clientCredential, generateAeadKey())).toThrow(
      DecryptionError,
    );
    const other = makeClient(pki.intermediateKey, pki.intermediate, "alpha.example", 40);
    expect(() =>
      pki.verifier.verifyLeafCredential(leaf, other.clientCredential, signatureEncryptionKey),
    ).toThrow(FingerprintMismatchError);
    expect(() =>
      pki.verifier.verifyLeafCredential(leaf, pki.clientCredential, signatureEncryptionKey, NOW + 8 * DAY),
    ).toThrow(ExpiredCredentialError);
  });

  it("refuses a leaf whose public part was altered (the hidden signature no longer matches)", () => {
    const { leaf, signatureEncryptionKey } = LeafCredential.issue({
      clientKey: pki.clientKey,
      clientCredential: pki.clientCredential,
      leafKey: leafKey.verifyingKey,
      expiration: validity,
    });
    const bytes = leaf.bytes.slice();
    bytes[5] = (bytes[5] as number) ^ 1; // identity byte
    expect(() =>
      LeafCredential.decode(bytes).verifyWith(pki.clientCredential, signatureEncryptionKey, NOW),
    ).toThrow(DecryptionError);
  });

  it("refuses a leaf of a revoked client", () => {
    const local = makePki();
    const { leaf, signatureEncryptionKey } = LeafCredential.issue({
      clientKey: local.clientKey,
      clientCredential: local.clientCredential,
      leafKey: leafKey.verifyingKey,
      expiration: validity,
    });
    local.verifier.revoke(local.clientCredential.fingerprint);
    expect(() =>
      local.verifier.verifyLeafCredential(leaf, local.clientCredential, signatureEncryptionKey),
    ).toThrow(RevokedCredentialError);
  });
});
