// node:crypto CryptoProvider vs ts-mls's default provider, same machine, same run.
// Run: node --conditions=source --import tsx libs/mls/bench/provider.bench.ts
import {
  type CiphersuiteImpl,
  type ClientState,
  type CryptoProvider,
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
  type KeyPackage,
  processPublicMessage,
} from "ts-mls";
import { nodeCryptoProvider, PHOENIX_CIPHERSUITE } from "../src/node-crypto-provider.js";
import { medianMs, opsPerSecond, printTable } from "./bench-util.js";

const text = new TextEncoder();

async function keyPackage(cs: CiphersuiteImpl, i: number) {
  return generateKeyPackage(
    { credentialType: "basic", identity: text.encode(`m${i}`) },
    defaultCapabilities(),
    defaultLifetime,
    [],
    cs,
  );
}

/** A group of `size` members built by one creator in a single commit; returns creator and second member state. */
async function groupOf(
  size: number,
  cs: CiphersuiteImpl,
): Promise<{ creator: ClientState; other: ClientState }> {
  const creatorKp = await keyPackage(cs, 0);
  let creator = await createGroup(
    text.encode(`bench-${size}`),
    creatorKp.publicPackage,
    creatorKp.privatePackage,
    [],
    cs,
  );
  const kps = await Promise.all(Array.from({ length: size - 1 }, (_, i) => keyPackage(cs, i + 1)));
  const add = await createCommit(
    { state: creator, cipherSuite: cs },
    {
      extraProposals: kps.map((k) => ({
        proposalType: "add" as const,
        add: { keyPackage: k.publicPackage },
      })),
    },
  );
  creator = add.newState;
  const first = kps[0];
  if (add.welcome === undefined || first === undefined) throw new Error("no welcome");
  const other = await joinGroup(
    add.welcome,
    first.publicPackage,
    first.privatePackage,
    emptyPskIndex,
    cs,
    creator.ratchetTree,
  );
  return { creator, other };
}

async function measure(provider: CryptoProvider, label: string): Promise<(string | number)[][]> {
  const cs = await getCiphersuiteImpl(getCiphersuiteFromName(PHOENIX_CIPHERSUITE), provider);
  const rows: (string | number)[][] = [];
  const keys = await cs.signature.keygen();
  const msg = text.encode("x".repeat(200));
  const sig = await cs.signature.sign(keys.signKey, msg);
  rows.push([label, "Ed25519 sign (ops/s)", await opsPerSecond(() => cs.signature.sign(keys.signKey, msg))]);
  rows.push([
    label,
    "Ed25519 verify (ops/s)",
    await opsPerSecond(() => cs.signature.verify(keys.publicKey, msg, sig)),
  ]);
  const pair = await cs.hpke.generateKeyPair();
  const sealed = await cs.hpke.seal(pair.publicKey, msg, msg);
  rows.push([label, "HPKE seal (ops/s)", await opsPerSecond(() => cs.hpke.seal(pair.publicKey, msg, msg))]);
  rows.push([
    label,
    "HPKE open (ops/s)",
    await opsPerSecond(() => cs.hpke.open(pair.privateKey, sealed.enc, sealed.ct, msg)),
  ]);
  // PHOENIX_BENCH_QUICK=1 (npm run bench -- --quick): only proves the bench runs.
  for (const size of process.env.PHOENIX_BENCH_QUICK === "1" ? [2] : [2, 16, 64]) {
    const { creator, other } = await groupOf(size, cs);
    const commitMs = await medianMs(async () => {
      await createCommit({ state: creator, cipherSuite: cs }, { wireAsPublicMessage: true });
    }, 7);
    const commit = await createCommit({ state: creator, cipherSuite: cs }, { wireAsPublicMessage: true });
    if (commit.commit.wireformat !== "mls_public_message") throw new Error("expected public message");
    const pm = commit.commit.publicMessage;
    const processMs = await medianMs(() => processPublicMessage(other, pm, emptyPskIndex, cs), 7);
    const addKp: KeyPackage = (await keyPackage(cs, 999)).publicPackage;
    const addMs = await medianMs(async () => {
      await createCommit(
        { state: creator, cipherSuite: cs },
        { wireAsPublicMessage: true, extraProposals: [{ proposalType: "add", add: { keyPackage: addKp } }] },
      );
    }, 7);
    rows.push([label, `N=${size} self-update commit (ms)`, commitMs]);
    rows.push([label, `N=${size} member processes it (ms)`, processMs]);
    rows.push([label, `N=${size} commit adding 1 (ms)`, addMs]);
  }
  return rows;
}

const rows = [
  ...(await measure(defaultCryptoProvider, "default")),
  ...(await measure(nodeCryptoProvider, "node:crypto")),
];
printTable(["provider", "operation", "value"], rows);
