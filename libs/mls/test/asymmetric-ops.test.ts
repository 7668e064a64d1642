import { describe, expect, it } from "vitest";
import {
  addMembers,
  createKeyPackage,
  createPhoenixGroup,
  encryptMessage,
  joinFromWelcome,
  processIncoming,
  updateOwnLeaf,
} from "../src/client/group-client.js";
import { parseGroupInfo, parsePublicMessage } from "../src/public-group/messages.js";
import { PublicGroup } from "../src/public-group/public-group.js";
import { type AsymmetricCounts, CountingSuite, totalOps } from "./support/counting-suite.js";
import { phoenixSuite, text } from "./support/harness.js";

/**
 * Public-key operations per MLS operation and group size, as measured through the counting
 * ciphersuite (docs/performance.md compares them with the protocol's bounds). Each DS request
 * additionally carries one Ed25519 request signature (client: +1 sign, DS: +1 verify), which is
 * outside MLS and listed in the doc, not here. A row is "sign/verify/seal/open/export/derive/generate".
 * The tree is the one right after the creator added everyone in one commit (unmerged parents: the
 * worst case for update paths, see the doc).
 */
const EXPECTED: Record<number, Record<string, string>> = {
  2: {
    "message: sender": "1/0/0/0/0/0/0 = 1",
    "message: each recipient": "0/1/0/0/0/0/0 = 1",
    "update: sender": "4/0/1/0/0/4/0 = 9",
    "update: DS": "0/3/0/0/0/0/0 = 3",
    "update: each member": "0/2/0/1/0/1/0 = 4",
    "add 1: sender": "3/2/1/0/0/1/0 = 7",
    "add 1: DS": "0/4/0/0/0/0/0 = 4",
    "add 1: each member": "0/3/0/0/0/0/0 = 3",
    "join (group of n+1)": "0/4/0/1/0/0/0 = 5",
  },
  16: {
    "message: sender": "1/0/0/0/0/0/0 = 1",
    "message: each recipient": "0/1/0/0/0/0/0 = 1",
    "update: sender": "4/0/15/0/0/10/0 = 29",
    "update: DS": "0/3/0/0/0/0/0 = 3",
    "update: each member": "0/2/0/1/0/4/0 = 7",
    "add 1: sender": "3/2/1/0/0/1/0 = 7",
    "add 1: DS": "0/4/0/0/0/0/0 = 4",
    "add 1: each member": "0/3/0/0/0/0/0 = 3",
    "join (group of n+1)": "0/18/0/1/0/0/0 = 19",
  },
  128: {
    "message: sender": "1/0/0/0/0/0/0 = 1",
    "message: each recipient": "0/1/0/0/0/0/0 = 1",
    "update: sender": "4/0/127/0/0/16/0 = 147",
    "update: DS": "0/3/0/0/0/0/0 = 3",
    "update: each member": "0/2/0/1/0/7/0 = 10",
    "add 1: sender": "3/2/1/0/0/1/0 = 7",
    "add 1: DS": "0/4/0/0/0/0/0 = 4",
    "add 1: each member": "0/3/0/0/0/0/0 = 3",
    "join (group of n+1)": "0/130/0/1/0/0/0 = 131",
  },
};

function row(c: AsymmetricCounts): string {
  return `${c.sign}/${c.verify}/${c.hpkeSeal}/${c.hpkeOpen}/${c.hpkeExport}/${c.derive}/${c.generate} = ${totalOps(c)}`;
}

async function measureGroup(n: number): Promise<Record<string, string>> {
  const counting = new CountingSuite(await phoenixSuite());
  const cs = counting.cs;
  const kp = (name: string) =>
    createKeyPackage({
      cipherSuite: cs,
      credential: { credentialType: "basic", identity: text.encode(name) },
      queueConfig: text.encode(`queue-of-${name}`),
      lastResort: false,
    });
  const alice = await kp("alice");
  const created = await createPhoenixGroup({
    cipherSuite: cs,
    groupId: text.encode(`g-${n}-${Math.random()}`),
    keyPackage: alice.publicPackage,
    privateKeyPackage: alice.privatePackage,
    roles: [],
  });
  const others = [];
  for (let i = 1; i < n; i++) others.push(await kp(`m${i}`));
  const bob = others[0];
  if (bob === undefined) throw new Error("n must be at least 2");
  const bulk = await addMembers(
    created.state,
    cs,
    others.map((o) => o.publicPackage),
  );
  if (bulk.welcome === undefined) throw new Error("no welcome");
  let a = bulk.newState;
  let b = await joinFromWelcome(bulk.welcome, bob.publicPackage, bob.privatePackage, cs, a.ratchetTree);
  const ds = await PublicGroup.fromGroupInfo(
    parseGroupInfo(bulk.groupInfo),
    { cipherSuite: cs, validateCredential: () => true },
    a.ratchetTree,
  );

  const out: Record<string, string> = {};
  // An application message: the sender encrypts, each recipient decrypts (the DS cannot).
  const sent = await counting.measure(() => encryptMessage(a, cs, text.encode("hello")));
  out["message: sender"] = row(sent.counts);
  a = sent.value.newState;
  const read = await counting.measure(() => processIncoming(b, cs, sent.value.message));
  out["message: each recipient"] = row(read.counts);
  if (read.value.kind !== "application") throw new Error("not an application message");
  b = read.value.newState;

  // A key update (full path commit) by bob.
  const update = await counting.measure(() => updateOwnLeaf(b, cs));
  out["update: sender"] = row(update.counts);
  const dsUpdate = await counting.measure(() =>
    ds.processCommit(parsePublicMessage(update.value.commit), parseGroupInfo(update.value.groupInfo)),
  );
  out["update: DS"] = row(dsUpdate.counts);
  const updated = await counting.measure(() => processIncoming(a, cs, update.value.commit));
  out["update: each member"] = row(updated.counts);
  if (updated.value.kind !== "handshake") throw new Error("not a handshake");
  a = updated.value.newState;
  b = update.value.newState;

  // Alice adds one joiner; the joiner joins from the Welcome.
  const joiner = await kp("joiner");
  const add = await counting.measure(() => addMembers(a, cs, [joiner.publicPackage]));
  out["add 1: sender"] = row(add.counts);
  const dsAdd = await counting.measure(() =>
    ds.processCommit(parsePublicMessage(add.value.commit), parseGroupInfo(add.value.groupInfo)),
  );
  out["add 1: DS"] = row(dsAdd.counts);
  const added = await counting.measure(() => processIncoming(b, cs, add.value.commit));
  out["add 1: each member"] = row(added.counts);
  const welcome = add.value.welcome;
  if (welcome === undefined) throw new Error("no welcome");
  const join = await counting.measure(() =>
    joinFromWelcome(welcome, joiner.publicPackage, joiner.privatePackage, cs, add.value.newState.ratchetTree),
  );
  out["join (group of n+1)"] = row(join.counts);
  return out;
}

/**
 * A key update in a group of `n` where every member has committed once (all parent nodes set,
 * the steady state the protocol's 3·log(n) bound assumes): sender and one receiver.
 */
async function measureWarmUpdate(n: number): Promise<Record<string, string>> {
  const counting = new CountingSuite(await phoenixSuite());
  const cs = counting.cs;
  const kps = [];
  for (let i = 0; i < n; i++)
    kps.push(
      await createKeyPackage({
        cipherSuite: cs,
        credential: { credentialType: "basic", identity: text.encode(`m${i}`) },
        queueConfig: text.encode(`queue-of-m${i}`),
        lastResort: false,
      }),
    );
  const [first, ...rest] = kps;
  if (first === undefined) throw new Error("n must be at least 1");
  const created = await createPhoenixGroup({
    cipherSuite: cs,
    groupId: text.encode(`warm-${n}-${Math.random()}`),
    keyPackage: first.publicPackage,
    privateKeyPackage: first.privatePackage,
    roles: [],
  });
  const bulk = await addMembers(
    created.state,
    cs,
    rest.map((k) => k.publicPackage),
  );
  const welcome = bulk.welcome;
  if (welcome === undefined) throw new Error("no welcome");
  const states = [bulk.newState];
  for (const k of rest)
    states.push(
      await joinFromWelcome(welcome, k.publicPackage, k.privatePackage, cs, bulk.newState.ratchetTree),
    );
  const updateBy = async (i: number) => {
    const self = states[i];
    if (self === undefined) throw new Error("no member");
    const out = await updateOwnLeaf(self, cs);
    for (let j = 0; j < states.length; j++) {
      const other = states[j];
      if (j === i || other === undefined) continue;
      const res = await processIncoming(other, cs, out.commit);
      if (res.kind !== "handshake") throw new Error("not a handshake");
      states[j] = res.newState;
    }
    states[i] = out.newState;
    return out;
  };
  for (let i = 0; i < n; i++) await updateBy(i);
  const sender = states[1];
  const receiver = states[0];
  if (sender === undefined || receiver === undefined) throw new Error("no members");
  const update = await counting.measure(() => updateOwnLeaf(sender, cs));
  const processed = await counting.measure(() => processIncoming(receiver, cs, update.value.commit));
  return { "update: sender": row(update.counts), "update: each member": row(processed.counts) };
}

describe("public-key operations per MLS operation", () => {
  it("for a key update in a group of 16 whose tree is full", async () => {
    const table = await measureWarmUpdate(16);
    if (process.env.ASYMMETRIC_OPS_VERBOSE) console.log("warm 16", table);
    expect(table).toEqual({
      "update: sender": "4/0/4/0/0/10/0 = 18",
      "update: each member": "0/2/0/1/0/4/0 = 7",
    });
  });

  for (const n of [2, 16, 128]) {
    it(`in a group of ${n}`, async () => {
      const table = await measureGroup(n);
      if (process.env.ASYMMETRIC_OPS_VERBOSE) console.log(n, table);
      expect(table).toEqual(EXPECTED[n]);
    });
  }
});
