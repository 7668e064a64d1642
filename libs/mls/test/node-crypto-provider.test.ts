import {
  type CiphersuiteImpl,
  type ClientState,
  createApplicationMessage,
  createCommit,
  createGroup,
  defaultCapabilities,
  defaultCryptoProvider,
  defaultLifetime,
  emptyPskIndex,
  generateKeyPackage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  joinGroup,
  processPrivateMessage,
  processPublicMessage,
} from "ts-mls";
import { describe, expect, it } from "vitest";
import { createNodeCryptoProvider, PHOENIX_CIPHERSUITE } from "../src/node-crypto-provider.js";

const text = new TextEncoder();

async function suites(): Promise<{ node: CiphersuiteImpl; web: CiphersuiteImpl }> {
  const cs = getCiphersuiteFromName(PHOENIX_CIPHERSUITE);
  return {
    node: await getCiphersuiteImpl(cs, createNodeCryptoProvider()),
    web: await getCiphersuiteImpl(cs, defaultCryptoProvider),
  };
}

async function keyPackage(name: string, cs: CiphersuiteImpl) {
  return generateKeyPackage(
    { credentialType: "basic", identity: text.encode(name) },
    defaultCapabilities(),
    defaultLifetime,
    [],
    cs,
  );
}

async function send(
  from: ClientState,
  to: ClientState,
  msg: string,
  fromCs: CiphersuiteImpl,
  toCs: CiphersuiteImpl,
) {
  const out = await createApplicationMessage(from, text.encode(msg), fromCs);
  const got = await processPrivateMessage(to, out.privateMessage, emptyPskIndex, toCs);
  if (got.kind !== "applicationMessage") throw new Error("expected an application message");
  return { from: out.newState, to: got.newState, plaintext: new TextDecoder().decode(got.message) };
}

describe("node:crypto CryptoProvider", () => {
  it("interoperates with the default provider through create, add, update and messages both ways", async () => {
    const { node, web } = await suites();
    // Alice runs on node:crypto, Bob on the default WebCrypto/noble provider.
    const alice = await keyPackage("alice", node);
    const bob = await keyPackage("bob", web);
    let a = await createGroup(text.encode("g-interop"), alice.publicPackage, alice.privatePackage, [], node);
    const add = await createCommit(
      { state: a, cipherSuite: node },
      {
        extraProposals: [{ proposalType: "add", add: { keyPackage: bob.publicPackage } }],
        ratchetTreeExtension: true,
      },
    );
    a = add.newState;
    if (add.welcome === undefined) throw new Error("no welcome");
    let b = await joinGroup(add.welcome, bob.publicPackage, bob.privatePackage, emptyPskIndex, web);
    expect(b.groupContext.epoch).toBe(1n);

    let r = await send(a, b, "hello bob", node, web);
    expect(r.plaintext).toBe("hello bob");
    a = r.from;
    b = r.to;
    r = await send(b, a, "hello alice", web, node);
    expect(r.plaintext).toBe("hello alice");
    b = r.from;
    a = r.to;

    // Bob (default provider) commits with an update path that Alice (node) must decrypt, then back.
    const bobUpdate = await createCommit({ state: b, cipherSuite: web }, { wireAsPublicMessage: true });
    b = bobUpdate.newState;
    if (bobUpdate.commit.wireformat !== "mls_public_message") throw new Error("expected public message");
    a = (await processPublicMessage(a, bobUpdate.commit.publicMessage, emptyPskIndex, node)).newState;
    const aliceUpdate = await createCommit({ state: a, cipherSuite: node }, { wireAsPublicMessage: true });
    a = aliceUpdate.newState;
    if (aliceUpdate.commit.wireformat !== "mls_public_message") throw new Error("expected public message");
    b = (await processPublicMessage(b, aliceUpdate.commit.publicMessage, emptyPskIndex, web)).newState;

    expect(a.groupContext.epoch).toBe(3n);
    expect(a.groupContext.treeHash).toEqual(b.groupContext.treeHash);
    expect(a.keySchedule.epochAuthenticator).toEqual(b.keySchedule.epochAuthenticator);
    r = await send(a, b, "after updates", node, web);
    expect(r.plaintext).toBe("after updates");
  });

  it("signs and verifies interchangeably with the default provider", async () => {
    const { node, web } = await suites();
    const msg = text.encode("labelled content");
    const nodeKeys = await node.signature.keygen();
    const webKeys = await web.signature.keygen();
    expect(
      await web.signature.verify(nodeKeys.publicKey, msg, await node.signature.sign(nodeKeys.signKey, msg)),
    ).toBe(true);
    // The default provider's signing keys are PKCS#8; the node provider accepts them too.
    expect(
      await node.signature.verify(webKeys.publicKey, msg, await node.signature.sign(webKeys.signKey, msg)),
    ).toBe(true);
    const sig = await node.signature.sign(nodeKeys.signKey, msg);
    sig[0] = (sig[0] ?? 0) ^ 1;
    expect(await node.signature.verify(nodeKeys.publicKey, msg, sig)).toBe(false);
    expect(await node.signature.verify(new Uint8Array(31), msg, sig)).toBe(false);
  });

  it("produces the same HMAC, HKDF and HPKE results as the default provider", async () => {
    const { node, web } = await suites();
    const key = text.encode("k".repeat(32));
    const data = text.encode("data");
    expect(await node.hash.mac(key, data)).toEqual(await web.hash.mac(key, data));
    expect(await node.hash.digest(data)).toEqual(await web.hash.digest(data));
    const prk = await node.kdf.extract(new Uint8Array(0), key);
    expect(prk).toEqual(await web.kdf.extract(new Uint8Array(0), key));
    expect(await node.kdf.expand(prk, data, 80)).toEqual(await web.kdf.expand(prk, data, 80));

    const ikm = text.encode("i".repeat(32));
    const nodePair = await node.hpke.deriveKeyPair(ikm);
    const webPair = await web.hpke.deriveKeyPair(ikm);
    expect(await node.hpke.exportPublicKey(nodePair.publicKey)).toEqual(
      await web.hpke.exportPublicKey(webPair.publicKey),
    );
    const sealed = await web.hpke.seal(webPair.publicKey, data, key, data);
    expect(await node.hpke.open(nodePair.privateKey, sealed.enc, sealed.ct, key, data)).toEqual(data);
    await expect(node.hpke.open(nodePair.privateKey, sealed.enc, sealed.ct, key, key)).rejects.toThrow();
  });
});
