// Generates libs/crypto/vectors/phoenix-vectors.json ONCE from fixed seeds. The file is committed
// and checked forever by test/phoenix-vectors.test.ts, so any change to an encoding or derivation
// shows up as a failing test, and other implementations can test against ours.
// Run: node --conditions=source --import tsx libs/crypto/scripts/generate-vectors.ts [--force]
import { existsSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  AeadLabel,
  AsCredential,
  AsIntermediateCredential,
  AsIntermediateCsr,
  aeadSeal,
  ClientCredential,
  ClientCredentialCsr,
  type ClientId,
  CredentialVerifier,
  createConnectionPackage,
  encodeHpkeCiphertext,
  encodeQueueMessage,
  encryptAtRest,
  encryptLeafSecrets,
  encryptUserProfile,
  expandWithLabel,
  HpkeKeyPair,
  handleHash,
  hpkeSeal,
  LeafCredential,
  pad,
  parseUuid,
  QueueRatchetSender,
  SignatureLabel,
  SigningKey,
  sealClientInfo,
  sealConnectionOffer,
  sealQueueConfig,
  sealWelcomeAttribution,
  signEnvelope,
  toHex,
  utf8,
  verifyConnectionPackage,
} from "../src/index.js";

const out = fileURLToPath(new URL("../vectors/phoenix-vectors.json", import.meta.url));
if (existsSync(out) && !process.argv.includes("--force")) {
  console.error(
    `${out} exists; vectors are generated once. Pass --force only for a deliberate format change.`,
  );
  process.exit(1);
}

const seed = (n: number) => new Uint8Array(32).fill(n);
const NOW = Date.UTC(2030, 0, 1);
const DAY = 86_400_000;
const h = toHex;

const signing = SigningKey.fromSeed(seed(1));
const signature = {
  seed: h(seed(1)),
  publicKey: h(signing.publicKey),
  label: SignatureLabel.ConnectionOffer,
  content: h(utf8("phoenix signature vector")),
  signature: h(signing.sign(SignatureLabel.ConnectionOffer, utf8("phoenix signature vector"))),
};

const kdf = {
  secret: h(seed(2)),
  label: "QueueRatchetNext",
  context: h(utf8("context")),
  length: 32,
  output: h(expandWithLabel(seed(2), "QueueRatchetNext", utf8("context"), 32)),
};

const aead = {
  key: h(seed(3)),
  label: AeadLabel.GroupState,
  nonce: h(seed(4)),
  aad: h(utf8("group-1")),
  plaintext: h(utf8("group state")),
  ciphertext: h(aeadSeal(seed(3), AeadLabel.GroupState, utf8("group state"), utf8("group-1"), seed(4))),
};

const padding = { buckets: [16, 64], content: h(utf8("abc")), padded: h(pad(utf8("abc"), [16, 64])) };

const ear = {
  key: h(seed(5)),
  label: AeadLabel.GroupState,
  aad: h(utf8("row-9")),
  plaintext: h(utf8("encrypted at rest")),
  ciphertext: h(
    encryptAtRest(seed(5), AeadLabel.GroupState, utf8("encrypted at rest"), { aad: utf8("row-9") }),
  ),
};

const envelopeKey = SigningKey.fromSeed(seed(6));
const env = signEnvelope(envelopeKey, "AuthRequest", utf8("request body"), { now: NOW });
const envelope = {
  seed: h(seed(6)),
  label: "AuthRequest",
  now: NOW,
  payload: h(utf8("request body")),
  tbs: h(env.tbs),
  signature: h(env.signature),
};

const hpkeRecipient = HpkeKeyPair.derive(seed(7));
const hpke = {
  recipientIkm: h(seed(7)),
  recipientPublicKey: h(hpkeRecipient.publicKey.bytes),
  label: "ConnectionOffer",
  infoContext: h(utf8("info")),
  aad: h(utf8("aad")),
  plaintext: h(utf8("hpke vector")),
  sealed: h(
    encodeHpkeCiphertext(
      hpkeSeal(hpkeRecipient.publicKey, "ConnectionOffer", utf8("hpke vector"), {
        infoContext: utf8("info"),
        aad: utf8("aad"),
      }),
    ),
  ),
};

// Credential chain (fully deterministic: Ed25519 signatures are deterministic).
const domain = "alpha.example";
const rootKey = SigningKey.fromSeed(seed(10));
const root = AsCredential.issue(rootKey, domain, { notBefore: NOW - DAY, notAfter: NOW + 3650 * DAY });
const intermediateKey = SigningKey.fromSeed(seed(11));
const intermediateValidity = { notBefore: NOW - DAY, notAfter: NOW + 365 * DAY };
const intermediate = AsIntermediateCredential.issue(
  rootKey,
  root,
  AsIntermediateCsr.create(intermediateKey, domain, intermediateValidity),
);
const clientKey = SigningKey.fromSeed(seed(12));
const clientId: ClientId = {
  clientUuid: parseUuid("0b1c2d3e-4f50-4a6b-8c7d-8e9fa0b1c2d3"),
  userId: { uuid: parseUuid("11111111-2222-4333-8444-555555555555"), domain },
};
const clientValidity = { notBefore: NOW - DAY, notAfter: NOW + 30 * DAY };
const clientCsr = ClientCredentialCsr.create(clientKey, clientId, clientValidity);
const client = ClientCredential.issue(intermediateKey, intermediate, clientCsr);
const leafKey = SigningKey.fromSeed(seed(13));
const leafValidity = { notBefore: NOW - DAY, notAfter: NOW + 7 * DAY };
const { leaf } = LeafCredential.issue({
  clientKey,
  clientCredential: client,
  leafKey: leafKey.verifyingKey,
  expiration: leafValidity,
  identity: seed(14).subarray(0, 16),
  signatureEncryptionKey: seed(15),
});
const credentials = {
  now: NOW,
  domain,
  rootSeed: h(seed(10)),
  intermediateSeed: h(seed(11)),
  clientSeed: h(seed(12)),
  leafSeed: h(seed(13)),
  rootValidity: root.expiration,
  intermediateValidity,
  clientValidity,
  leafValidity,
  clientUuid: "0b1c2d3e-4f50-4a6b-8c7d-8e9fa0b1c2d3",
  userUuid: "11111111-2222-4333-8444-555555555555",
  leafIdentity: h(seed(14).subarray(0, 16)),
  signatureEncryptionKey: h(seed(15)),
  root: h(root.bytes),
  rootFingerprint: h(root.fingerprint),
  intermediateCsr: h(AsIntermediateCsr.create(intermediateKey, domain, intermediateValidity).bytes),
  intermediate: h(intermediate.bytes),
  intermediateFingerprint: h(intermediate.fingerprint),
  clientCsr: h(clientCsr.bytes),
  client: h(client.bytes),
  clientFingerprint: h(client.fingerprint),
  leaf: h(leaf.bytes),
};

// Queue ratchet: init, two messages, a key update, one more message.
const queueKey = HpkeKeyPair.derive(seed(20));
const queueContext = utf8("qs-client-1");
const { sender, message: init } = QueueRatchetSender.create(queueKey.publicKey, queueContext);
const queueMessages = [
  init,
  sender.encrypt(utf8("m1")),
  sender.encrypt(utf8("m2")),
  sender.rotate(queueKey.publicKey),
  sender.encrypt(utf8("m4")),
];
const queueRatchet = {
  queueKeyIkm: h(seed(20)),
  context: h(queueContext),
  messages: queueMessages.map((m) => h(encodeQueueMessage(m))),
  payloads: [null, h(utf8("m1")), h(utf8("m2")), null, h(utf8("m4"))],
};

const qs = HpkeKeyPair.derive(seed(21));
const recordKey = SigningKey.fromSeed(seed(22));
const recordId = parseUuid("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d");
const queueConfig = {
  qsKeyIkm: h(seed(21)),
  recordSeed: h(seed(22)),
  clientRecordId: h(recordId),
  domain,
  sealed: h(sealQueueConfig({ qsKey: qs.publicKey, domain, clientRecordId: recordId, recordKey })),
};

const verifier = new CredentialVerifier({ now: () => NOW });
verifier.addRoot(root);
verifier.addIntermediate(intermediate);
const cp = createConnectionPackage({
  clientKey,
  clientCredential: client,
  lifetime: { notBefore: NOW - DAY, notAfter: NOW + 10 * DAY },
});
const pkg = verifyConnectionPackage(cp.bytes, { verifier, now: NOW });
const friendshipPackage = {
  friendshipToken: seed(30),
  friendshipEncryptionKey: seed(31),
  userProfileKey: seed(32),
};
const connection = {
  package: h(cp.bytes),
  packageHash: h(pkg.hash),
  decryptionKey: h(cp.decryptionKey.privateBytes),
  offer: h(
    sealConnectionOffer(
      {
        senderCredential: client,
        connectionGroupId: utf8("connection-group"),
        groupEarKey: seed(33),
        credentialEncryptionKey: seed(34),
        friendshipPackage,
        timestamp: NOW,
      },
      clientKey,
      pkg,
    ),
  ),
  connectionGroupId: h(utf8("connection-group")),
  groupEarKey: h(seed(33)),
  credentialEncryptionKey: h(seed(34)),
  friendshipToken: h(seed(30)),
  friendshipEncryptionKey: h(seed(31)),
  userProfileKey: h(seed(32)),
};

const leafSecrets = encryptLeafSecrets(seed(31), "addPackage", leaf.bytes, client, seed(15));
const addPackage = {
  friendshipEncryptionKey: h(seed(31)),
  encryptedClientCredential: h(leafSecrets.encryptedClientCredential),
  encryptedSignatureKey: h(leafSecrets.encryptedSignatureKey),
};

const clientInfo = {
  credentialEncryptionKey: h(seed(41)),
  sealed: h(sealClientInfo(seed(41), "group", leaf.bytes, client, seed(15))),
};

const handle = { handle: "alice_example", hash: h(handleHash("alice_example")) };

const welcome = {
  friendshipEncryptionKey: h(seed(31)),
  groupId: h(utf8("group-xyz")),
  welcome: h(utf8("mls welcome")),
  groupStateEarKey: h(seed(40)),
  credentialEncryptionKey: h(seed(41)),
  userProfileKeyEncryptionKey: h(seed(42)),
  sealed: h(
    sealWelcomeAttribution({
      senderKey: clientKey,
      senderCredential: client,
      groupId: utf8("group-xyz"),
      welcome: utf8("mls welcome"),
      groupKeys: {
        groupStateEarKey: seed(40),
        credentialEncryptionKey: seed(41),
        userProfileKeyEncryptionKey: seed(42),
      },
      friendshipEncryptionKey: seed(31),
      now: NOW,
    }),
  ),
};

const profile = encryptUserProfile(seed(32), clientId.userId, utf8('{"displayName":"Alice"}'));
const userProfile = {
  key: h(seed(32)),
  profile: h(utf8('{"displayName":"Alice"}')),
  keyIndex: h(profile.keyIndex),
  encrypted: h(profile.encrypted),
};

const doc = {
  description:
    "Phoenix crypto vectors, generated once by libs/crypto/scripts/generate-vectors.ts from fixed seeds. " +
    "Deterministic values are re-derived by the test; randomised ones (AEAD/HPKE nonces) are decrypted or verified.",
  signature,
  kdf,
  aead,
  padding,
  ear,
  envelope,
  hpke,
  credentials,
  queueRatchet,
  queueConfig,
  connection,
  addPackage,
  clientInfo,
  handle,
  welcome,
  userProfile,
};
writeFileSync(out, `${JSON.stringify(doc, null, 2)}\n`);
console.log(`wrote ${out}`);
