// DS validator (PublicGroup) time per commit next to a member's processing time for the same
// commit, at group sizes 2, 16, 128 and 1024. Both use the node:crypto provider.
// Run: npm run bench -- validator   (or node --conditions=source --import tsx libs/mls/bench/validator.bench.ts [sizes…])
import {
  type CiphersuiteImpl,
  type ClientState,
  createCommit,
  createGroup,
  createGroupInfoWithExternalPub,
  defaultCapabilities,
  emptyPskIndex,
  generateKeyPackage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  joinGroup,
  type Proposal,
  type PublicMessage,
  processPublicMessage,
} from "ts-mls";
import { nodeCryptoProvider, PHOENIX_CIPHERSUITE } from "../src/node-crypto-provider.js";
import { PublicGroup } from "../src/public-group/public-group.js";
import { medianMs, printTable } from "./bench-util.js";

const text = new TextEncoder();

function keyPackage(cs: CiphersuiteImpl, name: string) {
  return generateKeyPackage(
    { credentialType: "basic", identity: text.encode(name) },
    defaultCapabilities(),
    { notBefore: 0n, notAfter: 2n ** 62n },
    [],
    cs,
  );
}

function publicMessage(m: { wireformat: string; publicMessage?: PublicMessage }): PublicMessage {
  if (m.publicMessage === undefined) throw new Error("expected a PublicMessage");
  return m.publicMessage;
}

interface Setup {
  creator: ClientState;
  other: ClientState;
  validator: PublicGroup;
}

/** A group of `size` members (one add commit, then a full-path update so parent nodes exist). */
async function setup(size: number, cs: CiphersuiteImpl): Promise<Setup> {
  const creatorKp = await keyPackage(cs, "m0");
  let creator = await createGroup(
    text.encode(`bench-${size}`),
    creatorKp.publicPackage,
    creatorKp.privatePackage,
    [],
    cs,
  );
  const validator = await PublicGroup.fromGroupInfo(
    await createGroupInfoWithExternalPub(creator, [], cs),
    {
      cipherSuite: cs,
      validateCredential: () => true,
    },
    creator.ratchetTree,
  );
  const kps = await Promise.all(Array.from({ length: size - 1 }, (_, i) => keyPackage(cs, `m${i + 1}`)));
  const add = await createCommit(
    { state: creator, cipherSuite: cs },
    {
      wireAsPublicMessage: true,
      extraProposals: kps.map((k) => ({
        proposalType: "add" as const,
        add: { keyPackage: k.publicPackage },
      })),
    },
  );
  await validator.processCommit(publicMessage(add.commit));
  creator = add.newState;
  const first = kps[0];
  if (add.welcome === undefined || first === undefined) throw new Error("no welcome");
  let other = await joinGroup(
    add.welcome,
    first.publicPackage,
    first.privatePackage,
    emptyPskIndex,
    cs,
    validator.tree,
  );
  const update = await createCommit({ state: creator, cipherSuite: cs }, { wireAsPublicMessage: true });
  await validator.processCommit(publicMessage(update.commit));
  creator = update.newState;
  other = (await processPublicMessage(other, publicMessage(update.commit), emptyPskIndex, cs)).newState;
  return { creator, other, validator };
}

async function measure(s: Setup, cs: CiphersuiteImpl, proposals: Proposal[], runs: number) {
  const res = await createCommit(
    { state: s.creator, cipherSuite: cs },
    { wireAsPublicMessage: true, extraProposals: proposals },
  );
  const pm = publicMessage(res.commit);
  const groupInfo = await createGroupInfoWithExternalPub(res.newState, [], cs);
  const validatorMs = await medianMs(async () => {
    const staged = await s.validator.stageCommit(pm);
    await s.validator.verifyGroupInfo(staged, groupInfo);
  }, runs);
  const memberMs = await medianMs(() => processPublicMessage(s.other, pm, emptyPskIndex, cs), runs);
  return { validatorMs, memberMs };
}

const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n >= 2);
const cs = await getCiphersuiteImpl(getCiphersuiteFromName(PHOENIX_CIPHERSUITE), nodeCryptoProvider);
const rows: (string | number)[][] = [];
const quick = process.env.PHOENIX_BENCH_QUICK === "1"; // npm run bench -- --quick: only proves it runs
for (const size of quick ? [2, 16] : sizes.length > 0 ? sizes : [2, 16, 128, 1024]) {
  const t0 = performance.now();
  const s = await setup(size, cs);
  const setupS = (performance.now() - t0) / 1000;
  const runs = size >= 1024 ? 5 : 9;
  const update = await measure(s, cs, [], runs);
  const newcomer = (await keyPackage(cs, "newcomer")).publicPackage;
  const add = await measure(s, cs, [{ proposalType: "add", add: { keyPackage: newcomer } }], runs);
  // At N=2 the only other member is the observer itself, so removal is measured from N=16 up.
  const remove =
    size > 2
      ? await measure(s, cs, [{ proposalType: "remove", remove: { removed: size - 1 } }], runs)
      : undefined;
  const state = s.validator.encode();
  const decodeMs = await medianMs(
    async () => PublicGroup.decode(state, { cipherSuite: cs, validateCredential: () => true }),
    runs,
  );
  for (const [kind, m] of [
    ["self-update", update],
    ["add 1", add],
    ["remove 1", remove],
  ] as const)
    if (m !== undefined)
      rows.push([
        String(size),
        kind,
        m.validatorMs,
        m.memberMs,
        `${(m.memberMs / m.validatorMs).toFixed(1)}x`,
      ]);
  console.error(
    `N=${size}: setup ${setupS.toFixed(1)} s, validator state ${(state.byteLength / 1024).toFixed(1)} KiB, decode ${decodeMs.toFixed(2)} ms`,
  );
}
printTable(["members", "commit", "validator ms", "member ms", "member/validator"], rows);
