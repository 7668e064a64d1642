import { describe, expect, it } from "vitest";
import {
  DecodeError,
  DecryptionError,
  decodeHpkeCiphertext,
  encodeHpkeCiphertext,
  fromHex,
  HpkeKeyPair,
  HpkePublicKey,
  hpkeInfo,
  hpkeOpen,
  hpkeOpenBase,
  hpkeReceiveExport,
  hpkeSeal,
  hpkeSealBase,
  hpkeSendExport,
  setupBaseR,
  setupBaseS,
  toHex,
  utf8,
} from "../src/index.js";
import rfc9180 from "../vectors/rfc9180-hpke.json" with { type: "json" };

describe("HPKE (RFC 9180 A.1.1, base mode)", () => {
  for (const v of rfc9180.vectors) {
    it("derives the published key pairs", () => {
      const e = HpkeKeyPair.derive(fromHex(v.ikmE));
      const r = HpkeKeyPair.derive(fromHex(v.ikmR));
      expect(toHex(e.privateBytes)).toBe(v.skEm);
      expect(toHex(e.publicKey.bytes)).toBe(v.pkEm);
      expect(toHex(r.privateBytes)).toBe(v.skRm);
      expect(toHex(r.publicKey.bytes)).toBe(v.pkRm);
    });

    it("reproduces the key schedule, every encryption and every export as sender", () => {
      const e = HpkeKeyPair.derive(fromHex(v.ikmE));
      const { enc, context } = setupBaseS(HpkePublicKey.fromBytes(fromHex(v.pkRm)), fromHex(v.info), e);
      expect(toHex(enc)).toBe(v.enc);
      expect(toHex(context.schedule.sharedSecret)).toBe(v.shared_secret);
      expect(toHex(context.schedule.key)).toBe(v.key);
      expect(toHex(context.schedule.baseNonce)).toBe(v.base_nonce);
      expect(toHex(context.schedule.exporterSecret)).toBe(v.exporter_secret);
      for (const x of v.encryptions) {
        context.setSequence(x.seq);
        expect(toHex(context.seal(fromHex(x.aad), fromHex(x.pt)))).toBe(x.ct);
      }
      for (const x of v.exports) {
        expect(toHex(context.export(fromHex(x.exporter_context), x.L))).toBe(x.exported_value);
      }
    });

    it("opens every published ciphertext as recipient and refuses a flipped bit", () => {
      const r = HpkeKeyPair.fromPrivateBytes(fromHex(v.skRm));
      const context = setupBaseR(fromHex(v.enc), r, fromHex(v.info));
      for (const x of v.encryptions) {
        context.setSequence(x.seq);
        expect(toHex(context.open(fromHex(x.aad), fromHex(x.ct)))).toBe(x.pt);
      }
      const first = v.encryptions[0];
      if (!first) throw new Error("vector without encryptions");
      const flipped = fromHex(first.ct);
      flipped[0] = (flipped[0] as number) ^ 1;
      context.setSequence(0);
      expect(() => context.open(fromHex(first.aad), flipped)).toThrow(DecryptionError);
    });
  }
});

describe("single-shot HPKE (RFC 9180 sections 6.1 and 6.2, A.1.1 vectors)", () => {
  for (const v of rfc9180.vectors) {
    const first = v.encryptions.find((x) => x.seq === 0);
    if (!first) throw new Error("vector without a sequence-0 encryption");

    it("seals and sends exports exactly as the published sender", () => {
      const e = HpkeKeyPair.derive(fromHex(v.ikmE));
      const recipient = HpkePublicKey.fromBytes(fromHex(v.pkRm));
      const sealed = hpkeSealBase(recipient, fromHex(v.info), fromHex(first.aad), fromHex(first.pt), e);
      expect(toHex(sealed.enc)).toBe(v.enc);
      expect(toHex(sealed.ciphertext)).toBe(first.ct);
      for (const x of v.exports) {
        const sent = hpkeSendExport(recipient, fromHex(v.info), fromHex(x.exporter_context), x.L, e);
        expect(toHex(sent.enc)).toBe(v.enc);
        expect(toHex(sent.secret)).toBe(x.exported_value);
      }
    });

    it("opens the published ciphertext and receives every published export", () => {
      const r = HpkeKeyPair.fromPrivateBytes(fromHex(v.skRm));
      const sealed = { enc: fromHex(v.enc), ciphertext: fromHex(first.ct) };
      expect(toHex(hpkeOpenBase(r, sealed, fromHex(v.info), fromHex(first.aad)))).toBe(first.pt);
      for (const x of v.exports) {
        const secret = hpkeReceiveExport(
          r,
          fromHex(v.enc),
          fromHex(v.info),
          fromHex(x.exporter_context),
          x.L,
        );
        expect(toHex(secret)).toBe(x.exported_value);
      }
    });

    it("refuses another info or AAD, a flipped bit and a malformed enc", () => {
      const r = HpkeKeyPair.fromPrivateBytes(fromHex(v.skRm));
      const sealed = { enc: fromHex(v.enc), ciphertext: fromHex(first.ct) };
      expect(() => hpkeOpenBase(r, sealed, utf8("other info"), fromHex(first.aad))).toThrow(DecryptionError);
      expect(() => hpkeOpenBase(r, sealed, fromHex(v.info), utf8("other aad"))).toThrow(DecryptionError);
      const flipped = fromHex(first.ct);
      flipped[5] = (flipped[5] as number) ^ 1;
      expect(() =>
        hpkeOpenBase(r, { ...sealed, ciphertext: flipped }, fromHex(v.info), fromHex(first.aad)),
      ).toThrow(DecryptionError);
      expect(() =>
        hpkeReceiveExport(r, fromHex(v.enc).subarray(1), fromHex(v.info), new Uint8Array(0), 32),
      ).toThrow(DecryptionError);
    });
  }

  it("a fresh seal and export round-trip to a random recipient, each with its own enc", () => {
    const r = HpkeKeyPair.generate();
    const info = utf8("info");
    const a = hpkeSealBase(r.publicKey, info, utf8("aad"), utf8("pt"));
    const b = hpkeSealBase(r.publicKey, info, utf8("aad"), utf8("pt"));
    expect(toHex(a.enc)).not.toBe(toHex(b.enc));
    expect(hpkeOpenBase(r, b, info, utf8("aad"))).toEqual(utf8("pt"));
    const sent = hpkeSendExport(r.publicKey, info, utf8("ctx"), 48);
    expect(hpkeReceiveExport(r, sent.enc, info, utf8("ctx"), 48)).toEqual(sent.secret);
    expect(hpkeReceiveExport(r, sent.enc, info, utf8("other ctx"), 48)).not.toEqual(sent.secret);
  });

  it("the labelled API is the single-shot API with info = hpkeInfo(label, context)", () => {
    const r = HpkeKeyPair.generate();
    const sealed = hpkeSeal(r.publicKey, "Test", utf8("pt"), { infoContext: utf8("ctx"), aad: utf8("aad") });
    expect(hpkeOpenBase(r, sealed, hpkeInfo("Test", utf8("ctx")), utf8("aad"))).toEqual(utf8("pt"));
  });
});

describe("labelled HPKE", () => {
  const recipient = HpkeKeyPair.generate();
  const pt = utf8("queue config");

  it("round-trips with label, info context and aad", () => {
    const sealed = hpkeSeal(recipient.publicKey, "Test", pt, { infoContext: utf8("ctx"), aad: utf8("aad") });
    expect(hpkeOpen(recipient, "Test", sealed, { infoContext: utf8("ctx"), aad: utf8("aad") })).toEqual(pt);
    const decoded = decodeHpkeCiphertext(encodeHpkeCiphertext(sealed));
    expect(hpkeOpen(recipient, "Test", decoded, { infoContext: utf8("ctx"), aad: utf8("aad") })).toEqual(pt);
  });

  it("refuses another label, info context, aad or recipient", () => {
    const sealed = hpkeSeal(recipient.publicKey, "Test", pt, { aad: utf8("aad") });
    expect(() => hpkeOpen(recipient, "Other", sealed, { aad: utf8("aad") })).toThrow(DecryptionError);
    expect(() => hpkeOpen(recipient, "Test", sealed, { aad: utf8("aad"), infoContext: utf8("x") })).toThrow(
      DecryptionError,
    );
    expect(() => hpkeOpen(recipient, "Test", sealed)).toThrow(DecryptionError);
    expect(() => hpkeOpen(HpkeKeyPair.generate(), "Test", sealed, { aad: utf8("aad") })).toThrow(
      DecryptionError,
    );
  });

  it("refuses a truncated encoding and a low-order enc", () => {
    const bytes = encodeHpkeCiphertext(hpkeSeal(recipient.publicKey, "Test", pt));
    expect(() => decodeHpkeCiphertext(bytes.subarray(0, 40))).toThrow(DecodeError);
    const sealed = { enc: new Uint8Array(32), ciphertext: new Uint8Array(32) };
    expect(() => hpkeOpen(recipient, "Test", sealed)).toThrow(DecryptionError);
  });

  it("restores a key pair from its private bytes", () => {
    const restored = HpkeKeyPair.fromPrivateBytes(recipient.privateBytes);
    expect(toHex(restored.publicKey.bytes)).toBe(toHex(recipient.publicKey.bytes));
  });
});

describe("interop with @hpke/core", () => {
  it("a ciphertext sealed by either implementation opens in the other", async () => {
    const { Aes128Gcm, CipherSuite, HkdfSha256 } = await import("@hpke/core");
    const { DhkemX25519HkdfSha256 } = await import("@hpke/dhkem-x25519");
    const suite = new CipherSuite({
      kem: new DhkemX25519HkdfSha256(),
      kdf: new HkdfSha256(),
      aead: new Aes128Gcm(),
    });
    const ours = HpkeKeyPair.generate();
    const info = hpkeInfo("Interop", utf8("ctx"));
    const aad = utf8("aad");
    const pt = utf8("cross-implementation");

    const recipientKey = await suite.kem.deserializePublicKey(ours.publicKey.bytes.slice().buffer);
    const theirs = await suite.seal({ recipientPublicKey: recipientKey, info }, pt, aad);
    const opened = hpkeOpen(
      ours,
      "Interop",
      { enc: new Uint8Array(theirs.enc), ciphertext: new Uint8Array(theirs.ct) },
      { infoContext: utf8("ctx"), aad },
    );
    expect(opened).toEqual(pt);

    const theirPair = await suite.kem.generateKeyPair();
    const theirPublic = new Uint8Array(await suite.kem.serializePublicKey(theirPair.publicKey));
    const sealed = hpkeSeal(HpkePublicKey.fromBytes(theirPublic), "Interop", pt, {
      infoContext: utf8("ctx"),
      aad,
    });
    const back = await suite.open(
      { recipientKey: theirPair.privateKey, enc: sealed.enc.slice().buffer, info },
      sealed.ciphertext.slice().buffer,
      aad,
    );
    expect(new Uint8Array(back)).toEqual(pt);
  });
});
