// Micro-benchmark of the primitives the services lean on. Run: npm run bench -- crypto
// (or node --conditions=source --import tsx libs/crypto/bench/crypto.bench.ts). Not a test.
import { Aes128Gcm, CipherSuite, HkdfSha256 } from "@hpke/core";
import { DhkemX25519HkdfSha256 } from "@hpke/dhkem-x25519";
import {
  decryptAtRest,
  encryptAtRest,
  generateAeadKey,
  HpkeKeyPair,
  hpkeOpen,
  hpkeSeal,
  QueueRatchetReceiver,
  QueueRatchetSender,
  SigningKey,
  utf8,
  VerifyingKey,
} from "../src/index.js";

/** A quick run (CI) only proves the bench still runs: short windows, progress on stderr. */
const QUICK = process.env.PHOENIX_BENCH_QUICK === "1";
let measured = 0;

async function opsPerSecond(f: () => unknown, fullMs = 400): Promise<number> {
  const ms = QUICK ? 20 : fullMs;
  if (QUICK) process.stderr.write(`crypto bench: measuring operation ${++measured}\n`);
  for (let i = 0; i < (QUICK ? 5 : 50); i++) await f();
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    await f();
    n++;
  }
  return (n * 1000) / (performance.now() - t0);
}

const rows: [string, number][] = [];
const msg1k = new Uint8Array(1024).fill(7);
const msg64k = new Uint8Array(65536).fill(7);

const key = SigningKey.generate();
const sig = key.sign("Bench", msg1k);
const vk = VerifyingKey.fromBytes(key.publicKey);
rows.push(["Ed25519 labelled sign, 1 KiB", await opsPerSecond(() => key.sign("Bench", msg1k))]);
rows.push([
  "Ed25519 labelled verify, 1 KiB (cached key)",
  await opsPerSecond(() => vk.verify("Bench", msg1k, sig)),
]);

const recipient = HpkeKeyPair.generate();
const sealed = hpkeSeal(recipient.publicKey, "Bench", msg1k);
rows.push([
  "HPKE seal 1 KiB (node:crypto)",
  await opsPerSecond(() => hpkeSeal(recipient.publicKey, "Bench", msg1k)),
]);
rows.push(["HPKE open 1 KiB (node:crypto)", await opsPerSecond(() => hpkeOpen(recipient, "Bench", sealed))]);

const suite = new CipherSuite({
  kem: new DhkemX25519HkdfSha256(),
  kdf: new HkdfSha256(),
  aead: new Aes128Gcm(),
});
const rkp = await suite.kem.generateKeyPair();
const info = utf8("Bench");
const hpkeCoreSealed = await suite.seal({ recipientPublicKey: rkp.publicKey, info }, msg1k);
rows.push([
  "HPKE seal 1 KiB (@hpke/core)",
  await opsPerSecond(() => suite.seal({ recipientPublicKey: rkp.publicKey, info }, msg1k)),
]);
rows.push([
  "HPKE open 1 KiB (@hpke/core)",
  await opsPerSecond(() =>
    suite.open({ recipientKey: rkp.privateKey, enc: hpkeCoreSealed.enc, info }, hpkeCoreSealed.ct),
  ),
]);

const earKey = generateAeadKey();
const ct1k = encryptAtRest(earKey, "Bench", msg1k);
const ct64k = encryptAtRest(earKey, "Bench", msg64k);
rows.push([
  "EAR encrypt 1 KiB (pad + commit + AES-256-GCM)",
  await opsPerSecond(() => encryptAtRest(earKey, "Bench", msg1k)),
]);
rows.push(["EAR decrypt 1 KiB", await opsPerSecond(() => decryptAtRest(earKey, "Bench", ct1k))]);
rows.push(["EAR encrypt 64 KiB", await opsPerSecond(() => encryptAtRest(earKey, "Bench", msg64k))]);
rows.push(["EAR decrypt 64 KiB", await opsPerSecond(() => decryptAtRest(earKey, "Bench", ct64k))]);

const queueKey = HpkeKeyPair.generate();
const { sender, message } = QueueRatchetSender.create(queueKey.publicKey, utf8("bench-queue"));
const receiver = QueueRatchetReceiver.fromInit(queueKey, utf8("bench-queue"), message);
rows.push(["queue ratchet encrypt 1 KiB (QS)", await opsPerSecond(() => sender.encrypt(msg1k))]);
const { sender: s2, message: m2 } = QueueRatchetSender.create(queueKey.publicKey, utf8("bench-queue"));
const r2 = QueueRatchetReceiver.fromInit(queueKey, utf8("bench-queue"), m2);
const queued = Array.from({ length: QUICK ? 500 : 20_000 }, () => s2.encrypt(msg1k));
let next = 0;
rows.push([
  "queue ratchet decrypt 1 KiB (client)",
  await opsPerSecond(() => {
    const m = queued[next++];
    if (m) r2.decrypt(m);
  }, 200),
]);
void receiver;

{
  // Credential chain: root → intermediate → client, as a client verifies a peer's credential.
  const {
    AsCredential,
    AsIntermediateCredential,
    AsIntermediateCsr,
    ClientCredential,
    ClientCredentialCsr,
    CredentialVerifier,
  } = await import("../src/index.js");
  const now = Date.now();
  const validity = { notBefore: now - 1000, notAfter: now + 86_400_000 };
  const rootKey = SigningKey.generate();
  const root = AsCredential.issue(rootKey, "alpha.example", validity);
  const intKey = SigningKey.generate();
  const intermediate = AsIntermediateCredential.issue(
    rootKey,
    root,
    AsIntermediateCsr.create(intKey, "alpha.example", validity),
  );
  const clientKey = SigningKey.generate();
  const clientId = {
    clientUuid: new Uint8Array(16).fill(1),
    userId: { uuid: new Uint8Array(16).fill(2), domain: "alpha.example" },
  };
  const credential = ClientCredential.issue(
    intKey,
    intermediate,
    ClientCredentialCsr.create(clientKey, clientId, validity),
  );
  const verifier = new CredentialVerifier();
  verifier.addRoot(root);
  verifier.addIntermediate(intermediate);
  rows.push([
    "client credential chain verify (decode + verify)",
    await opsPerSecond(() => verifier.verifyClientCredential(ClientCredential.decode(credential.bytes))),
  ]);
}

const width = Math.max(...rows.map(([name]) => name.length));
console.log(`${"operation".padEnd(width)}  ops/s`);
for (const [name, ops] of rows) console.log(`${name.padEnd(width)}  ${ops.toFixed(0)}`);
