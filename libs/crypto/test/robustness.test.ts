import { describe, expect, it } from "vitest";
import {
  AsCredential,
  AsIntermediateCredential,
  ClientCredential,
  CredentialVerifier,
  CryptoError,
  classifyCryptoError,
  DecodeError,
  decodeAddPackage,
  decodeEnvelope,
  decodeFriendshipPackage,
  decodeHpkeCiphertext,
  decodeQueueMessage,
  decryptAtRest,
  fromHex,
  HpkeKeyPair,
  LeafCredential,
  openClientInfo,
  openConnectionOffer,
  openQueueConfig,
  SigningKey,
  StaleSequenceError,
  verifyConnectionPackage,
} from "../src/index.js";
import v from "../vectors/phoenix-vectors.json" with { type: "json" };

// Deterministic PRNG (mulberry32) so failures reproduce.
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mutations(bytes: Uint8Array, count: number, seed: number): Uint8Array[] {
  const rnd = prng(seed);
  const out: Uint8Array[] = [new Uint8Array(0), bytes.subarray(0, 1)];
  for (let i = 0; i < count; i++) {
    const choice = rnd();
    if (choice < 0.4) {
      const m = bytes.slice();
      const at = Math.floor(rnd() * m.length);
      m[at] = Math.floor(rnd() * 256);
      out.push(m);
    } else if (choice < 0.7) {
      out.push(bytes.subarray(0, Math.floor(rnd() * bytes.length)));
    } else {
      const extra = Uint8Array.from({ length: 1 + Math.floor(rnd() * 8) }, () => Math.floor(rnd() * 256));
      out.push(new Uint8Array([...bytes, ...extra]));
    }
  }
  return out;
}

const c = v.credentials;
const verifier = new CredentialVerifier({ now: () => c.now });
verifier.addRoot(AsCredential.decode(fromHex(c.root)));
verifier.addIntermediate(AsIntermediateCredential.decode(fromHex(c.intermediate)));

const targets: [string, string, (b: Uint8Array) => unknown][] = [
  ["AsCredential", c.root, (b) => AsCredential.decode(b).verifySelfSignature()],
  ["ClientCredential", c.client, (b) => verifier.verifyClientCredential(ClientCredential.decode(b))],
  [
    "LeafCredential",
    c.leaf,
    (b) =>
      LeafCredential.decode(b).verifyWith(
        ClientCredential.decode(fromHex(c.client)),
        fromHex(c.signatureEncryptionKey),
        c.now,
      ),
  ],
  ["QueueMessage", v.queueRatchet.messages[1] ?? "", (b) => decodeQueueMessage(b)],
  ["SignedEnvelope", v.envelope.tbs, (b) => decodeEnvelope(b)],
  ["HpkeCiphertext", v.hpke.sealed, (b) => decodeHpkeCiphertext(b)],
  [
    "EAR",
    v.ear.ciphertext,
    (b) => decryptAtRest(fromHex(v.ear.key), v.ear.label, b, { aad: fromHex(v.ear.aad) }),
  ],
  ["ConnectionPackage", v.connection.package, (b) => verifyConnectionPackage(b, { verifier, now: c.now })],
  [
    "ConnectionOffer",
    v.connection.offer,
    (b) =>
      openConnectionOffer(b, {
        decryptionKey: HpkeKeyPair.fromPrivateBytes(fromHex(v.connection.decryptionKey)),
        packageHash: fromHex(v.connection.packageHash),
        verifier,
        now: c.now,
      }),
  ],
  [
    "QueueConfig",
    v.queueConfig.sealed,
    (b) =>
      openQueueConfig(
        HpkeKeyPair.derive(fromHex(v.queueConfig.qsKeyIkm)),
        b,
        () => SigningKey.fromSeed(fromHex(v.queueConfig.recordSeed)).verifyingKey,
      ),
  ],
  ["AddPackage", "01000000020102000100000100", (b) => decodeAddPackage(b)],
  [
    "EncryptedClientInfo",
    v.clientInfo.sealed,
    (b) => openClientInfo(fromHex(v.clientInfo.credentialEncryptionKey), "group", fromHex(c.leaf), b),
  ],
  ["FriendshipPackage", `01${"00".repeat(96)}`, (b) => decodeFriendshipPackage(b)],
];

describe("malformed input never escapes as anything but a CryptoError", () => {
  for (const [name, hex, parse] of targets) {
    it(name, () => {
      for (const input of mutations(fromHex(hex), 300, name.length)) {
        try {
          parse(input);
        } catch (e) {
          if (!(e instanceof CryptoError))
            throw new Error(`${name}: ${String(e)} for ${Buffer.from(input).toString("hex")}`);
        }
      }
    });
  }
});

describe("error classification", () => {
  it("maps errors to the status a service should answer with", () => {
    expect(classifyCryptoError(new DecodeError("X.y", "bad"))).toBe("invalid-argument");
    expect(classifyCryptoError(new StaleSequenceError("old"))).toBe("failed-precondition");
    expect(classifyCryptoError(new CryptoError("x"))).toBe("unauthenticated");
    expect(classifyCryptoError(new TypeError("x"))).toBe("internal");
  });
});
