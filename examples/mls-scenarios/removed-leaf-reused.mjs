// Self-check: b proposes to leave; a commits that proposal (by reference) together with an
// invitation of d, who lands on b's freed leaf. b must see that it was removed, d must join on
// b's old leaf, and a, c and d must stay in step. ts-mls 1.6.4's own processing makes b fail on
// the commit ("No overlap…"); @phoenix/mls decides the removal itself.
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
  proposeSelfRemove,
} from "@phoenix/mls";
import { emptyPskIndex, getCiphersuiteFromName, getCiphersuiteImpl, processPublicMessage } from "ts-mls";

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
  const [ka, kb, kc, kd] = await Promise.all(["a", "b", "c", "d"].map(keyPackage));

  let { state: a } = await createPhoenixGroup({
    cipherSuite: cs,
    groupId: text.encode(`removed-leaf-reused-${Date.now()}`),
    keyPackage: ka.publicPackage,
    privateKeyPackage: ka.privatePackage,
    roles: [{ subject: { kind: "leaf", leafIndex: 0 }, role: "admin" }],
  });
  const invite = await addMembers(a, cs, [kb.publicPackage, kc.publicPackage]);
  a = invite.newState;
  check(invite.welcome !== undefined, "no Welcome for b and c");
  let b = await joinFromWelcome(invite.welcome, kb.publicPackage, kb.privatePackage, cs, a.ratchetTree);
  let c = await joinFromWelcome(invite.welcome, kc.publicPackage, kc.privatePackage, cs, a.ratchetTree);
  const leafOfB = b.privatePath.leafIndex;

  // b asks to leave; a and c store the proposal.
  const leave = await proposeSelfRemove(b, cs);
  b = leave.newState;
  a = (await processIncoming(a, cs, leave.proposal)).newState;
  c = (await processIncoming(c, cs, leave.proposal)).newState;

  // a commits the pending leave together with d's invitation: d takes the freed leaf.
  const out = await addMembers(a, cs, [kd.publicPackage]);
  a = out.newState;

  // Informational: what ts-mls's own processing does for b (1.6.4 fails).
  const msg = parseMlsMessage(out.commit);
  const bare = await processPublicMessage(b, msg.publicMessage, emptyPskIndex, cs).then(
    (r) => `reported ${r.newState.groupActiveState.kind}`,
    (e) => `failed (${e instanceof Error ? e.message : e})`,
  );

  const forB = await processIncoming(b, cs, out.commit);
  check(forB.kind === "handshake" && forB.removedFromGroup, "b did not see that it was removed");
  check(forB.newState.groupActiveState.kind === "removedFromGroup", "b's state is not 'removed'");
  const forC = await processIncoming(c, cs, out.commit);
  check(forC.kind === "handshake" && !forC.removedFromGroup, "c wrongly thinks it was removed");
  c = forC.newState;
  check(out.welcome !== undefined, "no Welcome for d");
  const d = await joinFromWelcome(out.welcome, kd.publicPackage, kd.privatePackage, cs, a.ratchetTree);
  check(
    d.privatePath.leafIndex === leafOfB,
    `d is on leaf ${d.privatePath.leafIndex}, not b's old leaf ${leafOfB}`,
  );
  for (const [name, s] of [
    ["c", c],
    ["d", d],
  ]) {
    check(s.groupContext.epoch === a.groupContext.epoch, `${name} is in another epoch than a`);
    check(
      Buffer.from(s.groupContext.treeHash).equals(Buffer.from(a.groupContext.treeHash)),
      `${name}'s tree differs from a's`,
    );
  }
  const sent = await encryptMessage(d, cs, text.encode("hello from d"));
  const got = await processIncoming(c, cs, sent.message);
  check(
    got.kind === "application" && new TextDecoder().decode(got.plaintext) === "hello from d",
    "c did not read d's message",
  );
  console.log(
    `removed-leaf-reused: ok (b removed, d on leaf ${leafOfB}); ts-mls's own processing for b ${bare}`,
  );
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`removed-leaf-reused: FAILED: ${e instanceof Error ? e.stack : e}`);
    process.exit(1);
  },
);
