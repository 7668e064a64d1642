// Self-check: a newcomer joins from a Welcome whose ratchet tree has nested unmerged leaves (a
// parent lists unmerged leaves a non-blank ancestor does not, which RFC 9420 §7.9.2 allows).
// ts-mls 1.6.4's own join refuses such trees; @phoenix/mls must accept them.
// Uses only the public API of @phoenix/mls and ts-mls. Exits 0 on success, 1 with a message otherwise.
import {
  addMembers,
  createKeyPackage,
  createNodeCryptoProvider,
  createPhoenixGroup,
  encryptMessage,
  joinFromWelcome,
  PHOENIX_CIPHERSUITE,
  parseMlsMessage,
  processIncoming,
  removeMembers,
  updateOwnLeaf,
} from "@phoenix/mls";
import { emptyPskIndex, getCiphersuiteFromName, getCiphersuiteImpl, joinGroup } from "ts-mls";
import { directPath, leafWidth } from "ts-mls/treemath.js";

const text = new TextEncoder();

function check(ok, message) {
  if (!ok) throw new Error(message);
}

async function main() {
  const cs = await getCiphersuiteImpl(
    getCiphersuiteFromName(PHOENIX_CIPHERSUITE),
    createNodeCryptoProvider(),
  );
  const keyPackage = (name) =>
    createKeyPackage({
      cipherSuite: cs,
      credential: { credentialType: "basic", identity: text.encode(name) },
      queueConfig: text.encode(`queue of ${name}`),
    });
  /** name → ClientState of every current member. */
  const members = new Map();

  const a = await keyPackage("a");
  const created = await createPhoenixGroup({
    cipherSuite: cs,
    groupId: text.encode(`nested-unmerged-${Date.now()}`),
    keyPackage: a.publicPackage,
    privateKeyPackage: a.privatePackage,
    roles: [{ subject: { kind: "leaf", leafIndex: 0 }, role: "admin" }],
  });
  members.set("a", created.state);

  /** `by` commits; every other member processes the commit; joiners join from the Welcome. */
  async function step(by, make, joiners = []) {
    const out = await make(members.get(by));
    for (const [name, state] of [...members]) {
      if (name === by) continue;
      const res = await processIncoming(state, cs, out.commit);
      if (res.kind === "handshake" && res.removedFromGroup) members.delete(name);
      else members.set(name, res.newState);
    }
    members.set(by, out.newState);
    for (const j of joiners) {
      check(out.welcome !== undefined, `commit by ${by} adding ${j.name} has no Welcome`);
      if (j.name === "z") bareTsMls = await tsMlsJoinOutcome(out, j.kp);
      // The tree comes out of band (as the DS serves it), not in the Welcome.
      const state = await joinFromWelcome(
        out.welcome,
        j.kp.publicPackage,
        j.kp.privatePackage,
        cs,
        out.newState.ratchetTree,
      );
      members.set(j.name, state);
    }
    return out;
  }
  async function add(by, names) {
    const joiners = [];
    for (const name of names) joiners.push({ name, kp: await keyPackage(name) });
    await step(
      by,
      (s) =>
        addMembers(
          s,
          cs,
          joiners.map((j) => j.kp.publicPackage),
        ),
      joiners,
    );
  }
  /** What ts-mls's own joinGroup does with z's Welcome (1.6.4 refuses it; informational only). */
  let bareTsMls = "not tried";
  async function tsMlsJoinOutcome(out, kp) {
    const msg = parseMlsMessage(out.welcome);
    try {
      await joinGroup(
        msg.welcome,
        kp.publicPackage,
        kp.privatePackage,
        emptyPskIndex,
        cs,
        out.newState.ratchetTree,
      );
      return "accepted it";
    } catch (e) {
      return `refused it (${e instanceof Error ? e.message : e})`;
    }
  }
  const leafOf = (name) => members.get(name).privatePath.leafIndex;

  await add("a", ["b", "c", "d", "e", "f", "g"]);
  await step("a", (s) => removeMembers(s, cs, [leafOf("f")]));
  await step("e", (s) => updateOwnLeaf(s, cs));
  await add("a", ["x"]);
  await add("a", ["y"]);
  await step("b", (s) => updateOwnLeaf(s, cs));
  await add("a", ["z"]);

  check(members.has("z"), "z did not join");
  const tree = members.get("z").ratchetTree;
  check(
    nestedPairs(tree) > 0,
    "the tree z joined has no nested unmerged leaves: the scenario did not happen",
  );
  // Everyone agrees on the epoch and tree; z's message reaches a.
  const zs = members.get("z");
  for (const [name, state] of members) {
    check(state.groupContext.epoch === zs.groupContext.epoch, `${name} is in another epoch than z`);
    check(
      Buffer.from(state.groupContext.treeHash).equals(Buffer.from(zs.groupContext.treeHash)),
      `${name}'s tree differs from z's`,
    );
  }
  const sent = await encryptMessage(zs, cs, text.encode("hello from z"));
  const got = await processIncoming(members.get("a"), cs, sent.message);
  check(
    got.kind === "application" && new TextDecoder().decode(got.plaintext) === "hello from z",
    "a did not read z's message",
  );
  console.log(
    `nested-unmerged-leaves: ok (z joined a tree with ${nestedPairs(tree)} nested unmerged pair(s), epoch ${zs.groupContext.epoch}); ts-mls's own joinGroup ${bareTsMls}`,
  );
}

/** Number of (parent, non-blank ancestor) pairs where the ancestor does not list the parent's unmerged leaves. */
function nestedPairs(tree) {
  const width = leafWidth(tree.length);
  let pairs = 0;
  tree.forEach((node, index) => {
    if (node?.nodeType !== "parent") return;
    for (const leaf of node.parent.unmergedLeaves) {
      const path = directPath(2 * leaf, width);
      for (const above of path.slice(path.indexOf(index) + 1)) {
        const other = tree[above];
        if (other?.nodeType === "parent" && !other.parent.unmergedLeaves.includes(leaf)) pairs++;
      }
    }
  });
  return pairs;
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`nested-unmerged-leaves: FAILED: ${e instanceof Error ? e.stack : e}`);
    process.exit(1);
  },
);
