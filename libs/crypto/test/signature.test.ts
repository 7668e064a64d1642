import { describe, expect, it } from "vitest";
import {
  BadSignatureError,
  DecodeError,
  decodeEnvelope,
  ed25519FromPkcs8,
  ed25519FromSeed,
  ed25519PublicKey,
  ed25519Sign,
  ed25519Verify,
  encodeEnvelope,
  FutureTimestampError,
  fromHex,
  InvalidInputError,
  openEnvelope,
  ReplayError,
  ReplayGuard,
  readUnverifiedEnvelope,
  SigningKey,
  StaleTimestampError,
  signEnvelope,
  toHex,
  utf8,
  VerifyingKey,
} from "../src/index.js";
import rfc8032 from "../vectors/rfc8032-ed25519.json" with { type: "json" };

describe("Ed25519 (RFC 8032 section 7.1)", () => {
  for (const v of rfc8032.vectors) {
    it(`${v.name}: derives the public key, signs and verifies`, () => {
      const kp = ed25519FromSeed(fromHex(v.secretKey));
      expect(toHex(kp.publicKey)).toBe(v.publicKey);
      const message = fromHex(v.message);
      expect(toHex(ed25519Sign(kp.privateKey, message))).toBe(v.signature);
      const pub = ed25519PublicKey(fromHex(v.publicKey));
      expect(ed25519Verify(pub, message, fromHex(v.signature))).toBe(true);
      const flipped = fromHex(v.signature);
      flipped[10] = (flipped[10] as number) ^ 0x01;
      expect(ed25519Verify(pub, message, flipped)).toBe(false);
    });
  }
});

describe("Ed25519 PKCS#8 import (the 48-byte form WebCrypto exports)", () => {
  const PKCS8_PREFIX = "302e020100300506032b657004220420";
  const v = rfc8032.vectors[0];
  if (!v) throw new Error("no RFC 8032 vector");

  it("imports the same key as the raw seed", () => {
    const kp = ed25519FromPkcs8(fromHex(PKCS8_PREFIX + v.secretKey));
    expect(toHex(kp.publicKey)).toBe(v.publicKey);
    expect(toHex(kp.seed)).toBe(v.secretKey);
    expect(toHex(ed25519Sign(kp.privateKey, fromHex(v.message)))).toBe(v.signature);
  });

  it("refuses a wrong length or an X25519 PKCS#8 key", () => {
    expect(() => ed25519FromPkcs8(fromHex(v.secretKey))).toThrow(InvalidInputError);
    const x25519 = `302e020100300506032b656e04220420${v.secretKey}`;
    expect(() => ed25519FromPkcs8(fromHex(x25519))).toThrow(InvalidInputError);
  });
});

describe("labelled signatures", () => {
  const key = SigningKey.fromSeed(new Uint8Array(32).fill(1));
  const content = utf8("hello");

  it("verifies under the same label and key", () => {
    const sig = key.sign("Test", content);
    expect(key.verifyingKey.verify("Test", content, sig)).toBe(true);
    expect(VerifyingKey.fromBytes(key.publicKey).verify("Test", content, sig)).toBe(true);
  });

  it("never verifies under another label, even one that is a prefix or suffix", () => {
    const sig = key.sign("Test", content);
    expect(key.verifyingKey.verify("Tes", content, sig)).toBe(false);
    expect(key.verifyingKey.verify("TestX", content, sig)).toBe(false);
    expect(() => key.verifyingKey.verifyOrThrow("Other", content, sig)).toThrow(BadSignatureError);
  });

  it("is not a plain signature over the content", () => {
    const sig = key.sign("Test", content);
    const raw = ed25519FromSeed(new Uint8Array(32).fill(1));
    expect(toHex(sig)).not.toBe(toHex(ed25519Sign(raw.privateKey, content)));
  });

  it("refuses a wrong key, flipped bit and truncated signature", () => {
    const sig = key.sign("Test", content);
    const other = SigningKey.generate();
    expect(other.verifyingKey.verify("Test", content, sig)).toBe(false);
    const flipped = sig.slice();
    flipped[0] = (flipped[0] as number) ^ 0x80;
    expect(key.verifyingKey.verify("Test", content, flipped)).toBe(false);
    expect(key.verifyingKey.verify("Test", content, sig.subarray(0, 63))).toBe(false);
  });

  it("round-trips a key through its seed", () => {
    const k = SigningKey.generate();
    expect(toHex(SigningKey.fromSeed(k.exportSeed()).publicKey)).toBe(toHex(k.publicKey));
  });

  it("rejects malformed public keys", () => {
    expect(() => VerifyingKey.fromBytes(new Uint8Array(31))).toThrow(InvalidInputError);
  });
});

describe("signed envelopes", () => {
  const key = SigningKey.generate();
  const now = 1_800_000_000_000;

  it("opens inside the window and returns the payload", () => {
    const env = signEnvelope(key, "Request", utf8("body"), { now });
    const opened = openEnvelope(key.verifyingKey, "Request", env, { now: now + 1000 });
    expect(opened.payload).toEqual(utf8("body"));
    expect(opened.timestamp).toBe(now);
    expect(readUnverifiedEnvelope(env).payload).toEqual(utf8("body"));
  });

  it("refuses stale and future timestamps", () => {
    const env = signEnvelope(key, "Request", utf8("body"), { now });
    expect(() => openEnvelope(key.verifyingKey, "Request", env, { now: now + 6 * 60_000 })).toThrow(
      StaleTimestampError,
    );
    expect(() => openEnvelope(key.verifyingKey, "Request", env, { now: now - 2 * 60_000 })).toThrow(
      FutureTimestampError,
    );
    const window = { maxAgeMs: 10 * 60_000, maxFutureSkewMs: 0 };
    expect(openEnvelope(key.verifyingKey, "Request", env, { now: now + 9 * 60_000, window }).timestamp).toBe(
      now,
    );
  });

  it("refuses another label, a tampered tbs and another key", () => {
    const env = signEnvelope(key, "Request", utf8("body"), { now });
    expect(() => openEnvelope(key.verifyingKey, "OtherRequest", env, { now })).toThrow(BadSignatureError);
    const tbs = env.tbs.slice();
    tbs[tbs.length - 1] = (tbs[tbs.length - 1] as number) ^ 1;
    expect(() => openEnvelope(key.verifyingKey, "Request", { ...env, tbs }, { now })).toThrow(
      BadSignatureError,
    );
    expect(() => openEnvelope(SigningKey.generate().verifyingKey, "Request", env, { now })).toThrow(
      BadSignatureError,
    );
  });

  it("refuses a replay inside the window and forgets nonces after it", () => {
    const guard = new ReplayGuard(60_000);
    const env = signEnvelope(key, "Request", utf8("body"), { now });
    openEnvelope(key.verifyingKey, "Request", env, { now, replayGuard: guard });
    expect(() =>
      openEnvelope(key.verifyingKey, "Request", env, { now: now + 10, replayGuard: guard }),
    ).toThrow(ReplayError);
    const fresh = signEnvelope(key, "Request", utf8("body"), { now });
    openEnvelope(key.verifyingKey, "Request", fresh, { now, replayGuard: guard });
    guard.check(new Uint8Array(16).fill(9), now + 120_000, now + 120_000);
    expect(guard.size).toBe(1);
  });

  it("round-trips its nested encoding and rejects truncation", () => {
    const env = signEnvelope(key, "Request", utf8("body"), { now });
    const bytes = encodeEnvelope(env);
    expect(decodeEnvelope(bytes)).toEqual(env);
    expect(() => decodeEnvelope(bytes.subarray(0, bytes.length - 1))).toThrow(DecodeError);
  });
});

describe("label hygiene", () => {
  it("all protocol labels are distinct within their kind", async () => {
    const { SignatureLabel, AeadLabel, HpkeLabel, KdfLabel } = await import("../src/labels.js");
    for (const table of [SignatureLabel, AeadLabel, HpkeLabel, KdfLabel]) {
      const values = Object.values(table);
      expect(new Set(values).size).toBe(values.length);
    }
  });

  it("an envelope signature is never a valid object signature under the same label", () => {
    const key = SigningKey.generate();
    const env = signEnvelope(key, "ClientCredential", utf8("x"));
    expect(key.verifyingKey.verify("ClientCredential", env.tbs, env.signature)).toBe(false);
  });
});

describe("timestamp window for protobuf-signed requests", () => {
  it("accepts inside the window and refuses outside", async () => {
    const { checkTimestampWindow } = await import("../src/index.js");
    const now = 1_800_000_000_000;
    checkTimestampWindow(now - 60_000, now);
    expect(() => checkTimestampWindow(now - 6 * 60_000, now)).toThrow(StaleTimestampError);
    expect(() => checkTimestampWindow(now + 2 * 60_000, now)).toThrow(FutureTimestampError);
  });
});
