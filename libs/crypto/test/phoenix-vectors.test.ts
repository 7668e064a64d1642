import { describe, expect, it } from "vitest";
import {
  AeadLabel,
  AsCredential,
  AsIntermediateCredential,
  AsIntermediateCsr,
  aeadOpen,
  aeadSeal,
  BadSignatureError,
  ClientCredential,
  ClientCredentialCsr,
  CredentialVerifier,
  DecryptionError,
  decodeHpkeCiphertext,
  decodeQueueMessage,
  decryptAtRest,
  decryptLeafSecrets,
  decryptUserProfile,
  ExpiredCredentialError,
  expandWithLabel,
  fromHex,
  HpkeKeyPair,
  handleHash,
  hpkeOpen,
  LeafCredential,
  openClientInfo,
  openConnectionOffer,
  openEnvelope,
  openQueueConfig,
  openWelcomeAttribution,
  pad,
  parseUuid,
  QueueRatchetReceiver,
  RevokedCredentialError,
  SigningKey,
  StaleTimestampError,
  toHex,
  userProfileKeyIndex,
  verifyConnectionPackage,
} from "../src/index.js";
import v from "../vectors/phoenix-vectors.json" with { type: "json" };

const x = fromHex;
const c = v.credentials;
const userId = { uuid: parseUuid(c.userUuid), domain: c.domain };

function verifier(now = c.now): CredentialVerifier {
  const ver = new CredentialVerifier({ now: () => now });
  ver.addRoot(AsCredential.decode(x(c.root)));
  ver.addIntermediate(AsIntermediateCredential.decode(x(c.intermediate)));
  return ver;
}

describe("phoenix vectors: deterministic values re-derive byte for byte", () => {
  it("labelled signature", () => {
    const key = SigningKey.fromSeed(x(v.signature.seed));
    expect(toHex(key.publicKey)).toBe(v.signature.publicKey);
    expect(toHex(key.sign(v.signature.label, x(v.signature.content)))).toBe(v.signature.signature);
  });

  it("ExpandWithLabel", () => {
    expect(toHex(expandWithLabel(x(v.kdf.secret), v.kdf.label, x(v.kdf.context), v.kdf.length))).toBe(
      v.kdf.output,
    );
  });

  it("AEAD with a fixed nonce, and padding", () => {
    expect(
      toHex(aeadSeal(x(v.aead.key), v.aead.label, x(v.aead.plaintext), x(v.aead.aad), x(v.aead.nonce))),
    ).toBe(v.aead.ciphertext);
    expect(toHex(pad(x(v.padding.content), v.padding.buckets))).toBe(v.padding.padded);
  });

  it("credential chain: root, intermediate CSR and credential, client CSR and credential, fingerprints", () => {
    const rootKey = SigningKey.fromSeed(x(c.rootSeed));
    const root = AsCredential.issue(rootKey, c.domain, c.rootValidity);
    expect(toHex(root.bytes)).toBe(c.root);
    expect(toHex(root.fingerprint)).toBe(c.rootFingerprint);
    const intermediateKey = SigningKey.fromSeed(x(c.intermediateSeed));
    const csr = AsIntermediateCsr.create(intermediateKey, c.domain, c.intermediateValidity);
    expect(toHex(csr.bytes)).toBe(c.intermediateCsr);
    const intermediate = AsIntermediateCredential.issue(rootKey, root, csr);
    expect(toHex(intermediate.bytes)).toBe(c.intermediate);
    expect(toHex(intermediate.fingerprint)).toBe(c.intermediateFingerprint);
    const clientId = { clientUuid: parseUuid(c.clientUuid), userId };
    const clientCsr = ClientCredentialCsr.create(
      SigningKey.fromSeed(x(c.clientSeed)),
      clientId,
      c.clientValidity,
    );
    expect(toHex(clientCsr.bytes)).toBe(c.clientCsr);
    const client = ClientCredential.issue(intermediateKey, intermediate, clientCsr);
    expect(toHex(client.bytes)).toBe(c.client);
    expect(toHex(client.fingerprint)).toBe(c.clientFingerprint);
  });

  it("handle hash", () => {
    expect(toHex(handleHash(v.handle.handle))).toBe(v.handle.hash);
  });

  it("user profile key index", () => {
    expect(toHex(userProfileKeyIndex(x(v.userProfile.key), userId))).toBe(v.userProfile.keyIndex);
  });
});

describe("phoenix vectors: stored randomised outputs open and verify", () => {
  it("AEAD, EAR and labelled HPKE", () => {
    expect(toHex(aeadOpen(x(v.aead.key), v.aead.label, x(v.aead.ciphertext), x(v.aead.aad)))).toBe(
      v.aead.plaintext,
    );
    expect(toHex(decryptAtRest(x(v.ear.key), v.ear.label, x(v.ear.ciphertext), { aad: x(v.ear.aad) }))).toBe(
      v.ear.plaintext,
    );
    const recipient = HpkeKeyPair.derive(x(v.hpke.recipientIkm));
    expect(toHex(recipient.publicKey.bytes)).toBe(v.hpke.recipientPublicKey);
    const opened = hpkeOpen(recipient, v.hpke.label, decodeHpkeCiphertext(x(v.hpke.sealed)), {
      infoContext: x(v.hpke.infoContext),
      aad: x(v.hpke.aad),
    });
    expect(toHex(opened)).toBe(v.hpke.plaintext);
  });

  it("signed envelope at its signing time, stale later", () => {
    const key = SigningKey.fromSeed(x(v.envelope.seed)).verifyingKey;
    const env = { tbs: x(v.envelope.tbs), signature: x(v.envelope.signature) };
    expect(toHex(openEnvelope(key, v.envelope.label, env, { now: v.envelope.now }).payload)).toBe(
      v.envelope.payload,
    );
    expect(() => openEnvelope(key, v.envelope.label, env, { now: v.envelope.now + 3_600_000 })).toThrow(
      StaleTimestampError,
    );
    expect(() => openEnvelope(key, "OtherLabel", env, { now: v.envelope.now })).toThrow(BadSignatureError);
  });

  it("leaf credential verifies; expired and revoked chains are refused", () => {
    const leaf = LeafCredential.decode(x(c.leaf));
    const client = ClientCredential.decode(x(c.client));
    expect(toHex(leaf.identity)).toBe(c.leafIdentity);
    expect(toHex(leaf.verifyingKey.bytes)).toBe(toHex(SigningKey.fromSeed(x(c.leafSeed)).publicKey));
    verifier().verifyLeafCredential(leaf, client, x(c.signatureEncryptionKey));
    expect(() =>
      verifier(c.leafValidity.notAfter + 1).verifyLeafCredential(leaf, client, x(c.signatureEncryptionKey)),
    ).toThrow(ExpiredCredentialError);
    const revoking = verifier();
    revoking.revoke(x(c.intermediateFingerprint));
    expect(() => revoking.verifyClientCredential(client)).toThrow(RevokedCredentialError);
  });

  it("queue ratchet: the stored queue decrypts in order", () => {
    const queueKey = HpkeKeyPair.derive(x(v.queueRatchet.queueKeyIkm));
    const [init, ...rest] = v.queueRatchet.messages.map((m) => decodeQueueMessage(x(m)));
    if (!init) throw new Error("no init message");
    const receiver = QueueRatchetReceiver.fromInit(queueKey, x(v.queueRatchet.context), init);
    rest.forEach((m, i) => {
      const got = receiver.decrypt(m, queueKey);
      const expected = v.queueRatchet.payloads[i + 1];
      if (expected) expect(got.kind === "message" ? toHex(got.payload) : "update").toBe(expected);
      else expect(got.kind).toBe("update");
    });
  });

  it("sealed queue config", () => {
    const qs = HpkeKeyPair.derive(x(v.queueConfig.qsKeyIkm));
    const recordKey = SigningKey.fromSeed(x(v.queueConfig.recordSeed)).verifyingKey;
    const config = openQueueConfig(qs, x(v.queueConfig.sealed), () => recordKey);
    expect(toHex(config.clientRecordId)).toBe(v.queueConfig.clientRecordId);
    expect(() =>
      openQueueConfig(qs, x(v.queueConfig.sealed), () => SigningKey.generate().verifyingKey),
    ).toThrow(BadSignatureError);
  });

  it("connection package and offer", () => {
    const pkg = verifyConnectionPackage(x(v.connection.package), { verifier: verifier(), now: c.now });
    expect(toHex(pkg.hash)).toBe(v.connection.packageHash);
    const offer = openConnectionOffer(x(v.connection.offer), {
      decryptionKey: HpkeKeyPair.fromPrivateBytes(x(v.connection.decryptionKey)),
      packageHash: pkg.hash,
      verifier: verifier(),
      now: c.now,
    });
    expect(toHex(offer.connectionGroupId)).toBe(v.connection.connectionGroupId);
    expect(toHex(offer.groupEarKey)).toBe(v.connection.groupEarKey);
    expect(toHex(offer.credentialEncryptionKey)).toBe(v.connection.credentialEncryptionKey);
    expect(toHex(offer.friendshipPackage.friendshipToken)).toBe(v.connection.friendshipToken);
    expect(toHex(offer.friendshipPackage.friendshipEncryptionKey)).toBe(v.connection.friendshipEncryptionKey);
    expect(toHex(offer.friendshipPackage.userProfileKey)).toBe(v.connection.userProfileKey);
  });

  it("AddPackage leaf secrets, welcome attribution, user profile", () => {
    const secrets = decryptLeafSecrets(x(v.addPackage.friendshipEncryptionKey), "addPackage", x(c.leaf), {
      encryptedClientCredential: x(v.addPackage.encryptedClientCredential),
      encryptedSignatureKey: x(v.addPackage.encryptedSignatureKey),
    });
    expect(toHex(secrets.clientCredential.bytes)).toBe(c.client);
    expect(toHex(secrets.signatureEncryptionKey)).toBe(c.signatureEncryptionKey);
    const info = openWelcomeAttribution(x(v.welcome.sealed), {
      friendshipEncryptionKey: x(v.welcome.friendshipEncryptionKey),
      groupId: x(v.welcome.groupId),
      welcome: x(v.welcome.welcome),
      verifier: verifier(),
    });
    expect(toHex(info.senderCredential.bytes)).toBe(c.client);
    expect(toHex(info.groupKeys.groupStateEarKey)).toBe(v.welcome.groupStateEarKey);
    expect(toHex(info.groupKeys.credentialEncryptionKey)).toBe(v.welcome.credentialEncryptionKey);
    expect(toHex(info.groupKeys.userProfileKeyEncryptionKey)).toBe(v.welcome.userProfileKeyEncryptionKey);
    const member = openClientInfo(
      x(v.clientInfo.credentialEncryptionKey),
      "group",
      x(c.leaf),
      x(v.clientInfo.sealed),
    );
    expect(toHex(member.clientCredential.bytes)).toBe(c.client);
    expect(toHex(decryptUserProfile(x(v.userProfile.key), userId, x(v.userProfile.encrypted)))).toBe(
      v.userProfile.profile,
    );
  });

  it("negative: a flipped bit in any stored ciphertext is refused", () => {
    const flip = (hex: string, at: number) => {
      const b = x(hex);
      b[at] = (b[at] as number) ^ 1;
      return b;
    };
    expect(() =>
      aeadOpen(x(v.aead.key), AeadLabel.GroupState, flip(v.aead.ciphertext, 70), x(v.aead.aad)),
    ).toThrow(DecryptionError);
    expect(() =>
      decryptAtRest(x(v.ear.key), v.ear.label, flip(v.ear.ciphertext, 100), { aad: x(v.ear.aad) }),
    ).toThrow(DecryptionError);
    expect(() =>
      decryptUserProfile(x(v.userProfile.key), userId, flip(v.userProfile.encrypted, 200)),
    ).toThrow(DecryptionError);
  });
});
