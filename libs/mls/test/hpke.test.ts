import { getCiphersuiteFromName, getCiphersuiteImpl, type Hpke } from "ts-mls";
import { describe, expect, it } from "vitest";
import { createNodeCryptoProvider, PHOENIX_CIPHERSUITE } from "../src/node-crypto-provider.js";

const h = (s: string) => Uint8Array.from(Buffer.from(s, "hex"));
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

// RFC 9180 Appendix A.1.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode.
// The primitives are @phoenix/crypto's (tested there against the full vector); this checks that the
// provider hands ts-mls the right ones, with ts-mls's key formats.
const A11 = {
  info: h("4f6465206f6e2061204772656369616e2055726e"),
  ikmE: h("7268600d403fce431561aef583ee1613527cff655c1343f29812e66706df3234"),
  pkEm: "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431",
  skEm: "52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736",
  ikmR: h("6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037"),
  pkRm: "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d",
  skRm: "4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8",
  pt: h("4265617574792069732074727574682c20747275746820626561757479"),
  aad0: h("436f756e742d30"),
  ct0: h("f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a"),
  exportEmpty32: "3853fe2b4035195a573ffc53856e77058e15d9ea064de3e59f4961d0095250ee",
};

async function providerHpke(): Promise<Hpke> {
  const cs = await getCiphersuiteImpl(
    getCiphersuiteFromName(PHOENIX_CIPHERSUITE),
    createNodeCryptoProvider(),
  );
  return cs.hpke;
}

describe("node:crypto provider HPKE (RFC 9180 A.1.1)", () => {
  it("derives the published key pairs and exports them raw", async () => {
    const hpke = await providerHpke();
    const e = await hpke.deriveKeyPair(A11.ikmE);
    const r = await hpke.deriveKeyPair(A11.ikmR);
    expect(hex(await hpke.exportPrivateKey(e.privateKey))).toBe(A11.skEm);
    expect(hex(await hpke.exportPublicKey(e.publicKey))).toBe(A11.pkEm);
    expect(hex(await hpke.exportPrivateKey(r.privateKey))).toBe(A11.skRm);
    expect(hex(await hpke.exportPublicKey(r.publicKey))).toBe(A11.pkRm);
  });

  it("opens the published ciphertext and imports the published exported secret", async () => {
    const hpke = await providerHpke();
    const r = await hpke.importPrivateKey(h(A11.skRm));
    expect(await hpke.open(r, h(A11.pkEm), A11.ct0, A11.info, A11.aad0)).toEqual(A11.pt);
    expect(hex(await hpke.importSecret(r, new Uint8Array(0), h(A11.pkEm), 32, A11.info))).toBe(
      A11.exportEmpty32,
    );
  });

  it("refuses a flipped ciphertext bit and a wrong AAD with ts-mls's CryptoError", async () => {
    const hpke = await providerHpke();
    const r = await hpke.importPrivateKey(h(A11.skRm));
    const flipped = A11.ct0.slice();
    flipped[3] = (flipped[3] ?? 0) ^ 1;
    await expect(hpke.open(r, h(A11.pkEm), flipped, A11.info, A11.aad0)).rejects.toThrow(/HPKE open/);
    await expect(hpke.open(r, h(A11.pkEm), A11.ct0, A11.info, new Uint8Array(0))).rejects.toMatchObject({
      name: "CryptoError",
    });
  });

  it("round-trips seal/open and export/import through imported raw keys", async () => {
    const hpke = await providerHpke();
    const pair = await hpke.generateKeyPair();
    const pub = await hpke.importPublicKey(await hpke.exportPublicKey(pair.publicKey));
    const priv = await hpke.importPrivateKey(await hpke.exportPrivateKey(pair.privateKey));
    const { ct, enc } = await hpke.seal(pub, A11.pt, A11.info, A11.aad0);
    expect(await hpke.open(priv, enc, ct, A11.info, A11.aad0)).toEqual(A11.pt);
    const ctx = new TextEncoder().encode("ctx");
    const exported = await hpke.exportSecret(pub, ctx, 32, A11.info);
    expect(await hpke.importSecret(priv, ctx, exported.enc, 32, A11.info)).toEqual(exported.secret);
  });

  it("refuses keys of the wrong size", async () => {
    const hpke = await providerHpke();
    await expect(hpke.importPublicKey(new Uint8Array(31))).rejects.toMatchObject({ name: "CryptoError" });
    await expect(hpke.importPrivateKey(new Uint8Array(33))).rejects.toMatchObject({ name: "CryptoError" });
  });
});
