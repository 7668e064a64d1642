import { describe, expect, it } from "vitest";
import {
  BadSignatureError,
  createConnectionPackage,
  createHandleConnectionPackage,
  DecryptionError,
  decodeAddPackage,
  decryptLeafSecrets,
  decryptUserProfile,
  decryptUserProfileKey,
  ExpiredCredentialError,
  encodeAddPackage,
  encryptLeafSecrets,
  encryptUserProfile,
  encryptUserProfileKey,
  generateAeadKey,
  generateFriendshipPackage,
  generateUserProfileKey,
  HpkeKeyPair,
  handleHash,
  InvalidInputError,
  LeafCredential,
  openClientInfo,
  openConnectionOffer,
  openQueueConfig,
  openWelcomeAttribution,
  parseUuid,
  queueConfigDomain,
  RevokedCredentialError,
  SigningKey,
  StaleTimestampError,
  sealClientInfo,
  sealConnectionOffer,
  sealQueueConfig,
  sealWelcomeAttribution,
  toHex,
  UnknownSignerError,
  utf8,
  verifyConnectionPackage,
} from "../src/index.js";
import { DAY, makeClient, makePki, NOW } from "./support/pki.js";

describe("sealed queue config", () => {
  const qs = HpkeKeyPair.generate();
  const recordKey = SigningKey.generate();
  const recordId = parseUuid("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d");
  const lookup = (id: Uint8Array) => (toHex(id) === toHex(recordId) ? recordKey.verifyingKey : undefined);

  it("lets the QS find the record and the DS only the domain; two seals are unlinkable", () => {
    const a = sealQueueConfig({
      qsKey: qs.publicKey,
      domain: "alpha.example",
      clientRecordId: recordId,
      recordKey,
    });
    const b = sealQueueConfig({
      qsKey: qs.publicKey,
      domain: "alpha.example",
      clientRecordId: recordId,
      recordKey,
    });
    expect(queueConfigDomain(a)).toBe("alpha.example");
    expect(toHex(openQueueConfig(qs, a, lookup).clientRecordId)).toBe(toHex(recordId));
    expect(Buffer.from(a).includes(Buffer.from(recordId))).toBe(false);
    expect(toHex(a)).not.toBe(toHex(b));
  });

  it("refuses a config signed by another key, for an unknown record, or for another QS", () => {
    const forged = sealQueueConfig({
      qsKey: qs.publicKey,
      domain: "alpha.example",
      clientRecordId: recordId,
      recordKey: SigningKey.generate(),
    });
    expect(() => openQueueConfig(qs, forged, lookup)).toThrow(BadSignatureError);
    const unknown = sealQueueConfig({
      qsKey: qs.publicKey,
      domain: "alpha.example",
      clientRecordId: parseUuid("00000000-0000-4000-8000-000000000000"),
      recordKey,
    });
    expect(() => openQueueConfig(qs, unknown, lookup)).toThrow(UnknownSignerError);
    const ok = sealQueueConfig({
      qsKey: qs.publicKey,
      domain: "alpha.example",
      clientRecordId: recordId,
      recordKey,
    });
    expect(() => openQueueConfig(HpkeKeyPair.generate(), ok, lookup)).toThrow(DecryptionError);
    // Re-labelling the routing domain breaks the HPKE AAD.
    const moved = sealQueueConfig({
      qsKey: qs.publicKey,
      domain: "alpha.example",
      clientRecordId: recordId,
      recordKey,
    });
    moved[2] = "b".charCodeAt(0);
    expect(() => openQueueConfig(qs, moved, lookup)).toThrow(DecryptionError);
  });
});

describe("connection packages and offers", () => {
  const alice = makePki("alpha.example", 1);
  const bob = makePki("beta.example", 20);
  // Each side trusts both domains' AS credentials.
  for (const v of [alice.verifier, bob.verifier]) {
    for (const p of [alice, bob]) {
      if (!v.hasSigner(p.root.fingerprint)) v.addRoot(p.root);
      if (!v.hasSigner(p.intermediate.fingerprint)) v.addIntermediate(p.intermediate);
    }
  }
  const lifetime = { notBefore: NOW - DAY, notAfter: NOW + 10 * DAY };

  function offerFor(pkg: ReturnType<typeof verifyConnectionPackage>) {
    return sealConnectionOffer(
      {
        senderCredential: alice.clientCredential,
        connectionGroupId: utf8("group-123"),
        groupEarKey: generateAeadKey(),
        credentialEncryptionKey: generateAeadKey(),
        friendshipPackage: generateFriendshipPackage(generateUserProfileKey()),
        timestamp: NOW,
      },
      alice.clientKey,
      pkg,
    );
  }

  it("alice connects to bob: package verified, offer sealed, bob opens and authenticates alice", () => {
    const { bytes, decryptionKey } = createConnectionPackage({
      clientKey: bob.clientKey,
      clientCredential: bob.clientCredential,
      lifetime,
    });
    const pkg = verifyConnectionPackage(bytes, { verifier: alice.verifier, now: NOW });
    expect(pkg.clientCredential?.clientId.userId.domain).toBe("beta.example");
    const offer = openConnectionOffer(offerFor(pkg), {
      decryptionKey,
      packageHash: pkg.hash,
      verifier: bob.verifier,
      now: NOW + 1000,
    });
    expect(offer.senderCredential.clientId.userId.domain).toBe("alpha.example");
    expect(new TextDecoder().decode(offer.connectionGroupId)).toBe("group-123");
  });

  it("supports handle packages signed by the handle key", () => {
    const handleKey = SigningKey.generate();
    const { bytes } = createHandleConnectionPackage({ handleKey, lifetime });
    const pkg = verifyConnectionPackage(bytes, { handleKey: handleKey.verifyingKey, now: NOW });
    expect(pkg.clientCredential).toBeUndefined();
    expect(() =>
      verifyConnectionPackage(bytes, { handleKey: SigningKey.generate().verifyingKey, now: NOW }),
    ).toThrow(BadSignatureError);
  });

  it("refuses an expired package, a revoked sender and a tampered package", () => {
    const { bytes, decryptionKey } = createConnectionPackage({
      clientKey: bob.clientKey,
      clientCredential: bob.clientCredential,
      lifetime,
    });
    expect(() => verifyConnectionPackage(bytes, { verifier: alice.verifier, now: NOW + 11 * DAY })).toThrow(
      ExpiredCredentialError,
    );
    const tampered = bytes.slice();
    tampered[5] = (tampered[5] as number) ^ 1;
    expect(() => verifyConnectionPackage(tampered, { verifier: alice.verifier, now: NOW })).toThrow(
      BadSignatureError,
    );
    const pkg = verifyConnectionPackage(bytes, { verifier: alice.verifier, now: NOW });
    const sealed = offerFor(pkg);
    const strict = makePki("beta.example", 20).verifier;
    strict.addRoot(alice.root);
    strict.addIntermediate(alice.intermediate);
    strict.revoke(alice.clientCredential.fingerprint);
    expect(() =>
      openConnectionOffer(sealed, { decryptionKey, packageHash: pkg.hash, verifier: strict, now: NOW }),
    ).toThrow(RevokedCredentialError);
  });

  it("refuses an offer opened for another package, with another key, or too old", () => {
    const first = createConnectionPackage({
      clientKey: bob.clientKey,
      clientCredential: bob.clientCredential,
      lifetime,
    });
    const second = createConnectionPackage({
      clientKey: bob.clientKey,
      clientCredential: bob.clientCredential,
      lifetime,
    });
    const pkg1 = verifyConnectionPackage(first.bytes, { verifier: alice.verifier, now: NOW });
    const pkg2 = verifyConnectionPackage(second.bytes, { verifier: alice.verifier, now: NOW });
    const sealed = offerFor(pkg1);
    expect(() =>
      openConnectionOffer(sealed, {
        decryptionKey: first.decryptionKey,
        packageHash: pkg2.hash,
        verifier: bob.verifier,
        now: NOW,
      }),
    ).toThrow(DecryptionError);
    expect(() =>
      openConnectionOffer(sealed, {
        decryptionKey: second.decryptionKey,
        packageHash: pkg1.hash,
        verifier: bob.verifier,
        now: NOW,
      }),
    ).toThrow(DecryptionError);
    expect(() =>
      openConnectionOffer(sealed, {
        decryptionKey: first.decryptionKey,
        packageHash: pkg1.hash,
        verifier: bob.verifier,
        now: NOW + 5 * DAY,
        maxAgeMs: DAY,
      }),
    ).toThrow(StaleTimestampError);
  });
});

describe("AddPackages and group credentials", () => {
  const pki = makePki();
  const leafKey = SigningKey.generate();
  const { leaf, signatureEncryptionKey } = LeafCredential.issue({
    clientKey: pki.clientKey,
    clientCredential: pki.clientCredential,
    leafKey: leafKey.verifyingKey,
    expiration: { notBefore: NOW - DAY, notAfter: NOW + DAY },
  });
  const friendship = generateFriendshipPackage(generateUserProfileKey());

  it("a friend decrypts the AddPackage secrets, verifies the leaf and re-encrypts them for the group", () => {
    const secrets = encryptLeafSecrets(
      friendship.friendshipEncryptionKey,
      "addPackage",
      leaf.bytes,
      pki.clientCredential,
      signatureEncryptionKey,
    );
    const published = decodeAddPackage(encodeAddPackage({ keyPackage: utf8("mls key package"), ...secrets }));
    const opened = decryptLeafSecrets(
      friendship.friendshipEncryptionKey,
      "addPackage",
      leaf.bytes,
      published,
    );
    pki.verifier.verifyLeafCredential(leaf, opened.clientCredential, opened.signatureEncryptionKey);
    const groupKey = generateAeadKey();
    const forGroup = encryptLeafSecrets(
      groupKey,
      "group",
      leaf.bytes,
      opened.clientCredential,
      opened.signatureEncryptionKey,
    );
    const member = decryptLeafSecrets(groupKey, "group", leaf.bytes, forGroup);
    expect(toHex(member.clientCredential.fingerprint)).toBe(toHex(pki.clientCredential.fingerprint));
  });

  it("refuses a wrong friendship key, another audience and a swap onto another leaf", () => {
    const secrets = encryptLeafSecrets(
      friendship.friendshipEncryptionKey,
      "addPackage",
      leaf.bytes,
      pki.clientCredential,
      signatureEncryptionKey,
    );
    expect(() => decryptLeafSecrets(generateAeadKey(), "addPackage", leaf.bytes, secrets)).toThrow(
      DecryptionError,
    );
    expect(() =>
      decryptLeafSecrets(friendship.friendshipEncryptionKey, "group", leaf.bytes, secrets),
    ).toThrow(DecryptionError);
    const otherLeaf = LeafCredential.issue({
      clientKey: pki.clientKey,
      clientCredential: pki.clientCredential,
      leafKey: leafKey.verifyingKey,
      expiration: { notBefore: NOW - DAY, notAfter: NOW + DAY },
    }).leaf;
    expect(() =>
      decryptLeafSecrets(friendship.friendshipEncryptionKey, "addPackage", otherLeaf.bytes, secrets),
    ).toThrow(DecryptionError);
  });
});

describe("client infos and handle hashes", () => {
  const pki = makePki();
  const { leaf, signatureEncryptionKey } = LeafCredential.issue({
    clientKey: pki.clientKey,
    clientCredential: pki.clientCredential,
    leafKey: SigningKey.generate().verifyingKey,
    expiration: { notBefore: NOW - DAY, notAfter: NOW + DAY },
  });

  it("an EncryptedClientInfo opens for group members and only for that leaf", () => {
    const groupKey = generateAeadKey();
    const info = sealClientInfo(groupKey, "group", leaf.bytes, pki.clientCredential, signatureEncryptionKey);
    const opened = openClientInfo(groupKey, "group", leaf.bytes, info);
    pki.verifier.verifyLeafCredential(leaf, opened.clientCredential, opened.signatureEncryptionKey);
    expect(() => openClientInfo(generateAeadKey(), "group", leaf.bytes, info)).toThrow(DecryptionError);
    expect(() => openClientInfo(groupKey, "group", utf8("other leaf"), info)).toThrow(DecryptionError);
  });

  it("hashes handles deterministically and distinctly", () => {
    expect(toHex(handleHash("alice"))).toBe(toHex(handleHash("alice")));
    expect(toHex(handleHash("alice"))).not.toBe(toHex(handleHash("alicf")));
    expect(() => handleHash("")).toThrow(InvalidInputError);
  });
});

describe("welcome attribution", () => {
  const inviter = makePki("alpha.example", 1);
  const fek = generateAeadKey();
  const groupId = utf8("group-xyz");
  const welcome = utf8("mls welcome bytes");
  const groupKeys = {
    groupStateEarKey: generateAeadKey(),
    credentialEncryptionKey: generateAeadKey(),
    userProfileKeyEncryptionKey: generateAeadKey(),
  };

  it("the joiner learns and authenticates the inviter", () => {
    const sealed = sealWelcomeAttribution({
      senderKey: inviter.clientKey,
      senderCredential: inviter.clientCredential,
      groupId,
      welcome,
      groupKeys,
      friendshipEncryptionKey: fek,
      now: NOW,
    });
    const info = openWelcomeAttribution(sealed, {
      friendshipEncryptionKey: fek,
      groupId,
      welcome,
      verifier: inviter.verifier,
    });
    expect(info.sender.userId.domain).toBe("alpha.example");
    expect(info.timestamp).toBe(NOW);
    expect(info.groupKeys).toEqual(groupKeys);
  });

  it("refuses another group, another Welcome, a wrong key and an expired inviter", () => {
    const sealed = sealWelcomeAttribution({
      senderKey: inviter.clientKey,
      senderCredential: inviter.clientCredential,
      groupId,
      welcome,
      groupKeys,
      friendshipEncryptionKey: fek,
    });
    const base = { friendshipEncryptionKey: fek, groupId, welcome, verifier: inviter.verifier };
    expect(() => openWelcomeAttribution(sealed, { ...base, groupId: utf8("other") })).toThrow(
      DecryptionError,
    );
    expect(() => openWelcomeAttribution(sealed, { ...base, welcome: utf8("other") })).toThrow(
      InvalidInputError,
    );
    expect(() =>
      openWelcomeAttribution(sealed, { ...base, friendshipEncryptionKey: generateAeadKey() }),
    ).toThrow(DecryptionError);
    expect(() => openWelcomeAttribution(sealed, { ...base, now: NOW + 60 * DAY })).toThrow(
      ExpiredCredentialError,
    );
  });
});

describe("user profiles", () => {
  const user = makeClient(makePki().intermediateKey, makePki().intermediate, "alpha.example", 3).clientId
    .userId;
  const other = { uuid: parseUuid("99999999-2222-4333-8444-555555555555"), domain: "alpha.example" };

  it("round-trips, files under a key index and pads", () => {
    const key = generateUserProfileKey();
    const { keyIndex, encrypted } = encryptUserProfile(key, user, utf8('{"name":"Alice"}'));
    expect(keyIndex.length).toBe(32);
    expect(encrypted.length).toBeGreaterThan(1024);
    expect(new TextDecoder().decode(decryptUserProfile(key, user, encrypted))).toBe('{"name":"Alice"}');
    expect(Buffer.from(encrypted).includes(Buffer.from("Alice"))).toBe(false);
  });

  it("refuses an old key (other index) and another user's profile", () => {
    const key = generateUserProfileKey();
    const { encrypted } = encryptUserProfile(key, user, utf8("profile"));
    expect(() => decryptUserProfile(generateUserProfileKey(), user, encrypted)).toThrow(
      /another profile key/,
    );
    expect(() => decryptUserProfile(key, other, encrypted)).toThrow(DecryptionError);
  });

  it("shares the profile key with a group under the group key, bound to the user", () => {
    const groupKey = generateAeadKey();
    const profileKey = generateUserProfileKey();
    const wrapped = encryptUserProfileKey(groupKey, user, profileKey);
    expect(decryptUserProfileKey(groupKey, user, wrapped)).toEqual(profileKey);
    expect(() => decryptUserProfileKey(groupKey, other, wrapped)).toThrow(DecryptionError);
  });
});

describe("key ids and sealed push tokens", () => {
  it("a config names its QS key; a rotated-out key is recognised and refused", async () => {
    const { hpkeKeyId, queueConfigKeyId } = await import("../src/index.js");
    const current = HpkeKeyPair.generate();
    const old = HpkeKeyPair.generate();
    const recordKey = SigningKey.generate();
    const recordId = parseUuid("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d");
    const sealed = sealQueueConfig({
      qsKey: old.publicKey,
      domain: "alpha.example",
      clientRecordId: recordId,
      recordKey,
    });
    expect(toHex(queueConfigKeyId(sealed))).toBe(toHex(hpkeKeyId(old.publicKey)));
    expect(() => openQueueConfig(current, sealed, () => recordKey.verifyingKey)).toThrow(/another QS key/);
  });

  it("push tokens open only at the QS they were sealed to", async () => {
    const { openPushToken, sealPushToken } = await import("../src/index.js");
    const qs = HpkeKeyPair.generate();
    const sealed = sealPushToken(qs.publicKey, utf8("fcm:token-123"));
    expect(new TextDecoder().decode(openPushToken(qs, sealed))).toBe("fcm:token-123");
    expect(Buffer.from(sealed).includes(Buffer.from("token-123"))).toBe(false);
    expect(() => openPushToken(HpkeKeyPair.generate(), sealed)).toThrow(DecryptionError);
  });

  it("signature key ids are stable and distinct per key", async () => {
    const { signatureKeyId } = await import("../src/index.js");
    const k = SigningKey.fromSeed(new Uint8Array(32).fill(5));
    expect(signatureKeyId(k.verifyingKey)).toEqual(
      signatureKeyId(SigningKey.fromSeed(new Uint8Array(32).fill(5)).verifyingKey),
    );
    expect(toHex(signatureKeyId(k.verifyingKey))).not.toBe(
      toHex(signatureKeyId(SigningKey.generate().verifyingKey)),
    );
  });
});
