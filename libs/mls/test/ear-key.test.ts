// The EAR-key rotation rule on the client side: which commits rotate (commitRemovesMembers) and
// that every remaining member derives the same new key from the commit (exportGroupStateEarKey).
import type { ClientState } from "ts-mls";
import { describe, expect, it } from "vitest";
import { commitRemovesMembers, exportGroupStateEarKey } from "../src/client/ear-key.js";
import {
  addMembers,
  commitPendingProposals,
  createKeyPackage,
  createPhoenixGroup,
  joinFromWelcome,
  processIncoming,
  proposeSelfRemove,
  removeMembers,
  updateOwnLeaf,
} from "../src/client/group-client.js";
import { phoenixSuite, text } from "./support/harness.js";

describe("EAR-key rotation helpers", () => {
  it("rotate on removals by value and by reference only; members agree on the new key", async () => {
    const cs = await phoenixSuite();
    const kp = (name: string) =>
      createKeyPackage({
        cipherSuite: cs,
        credential: { credentialType: "basic", identity: text.encode(name) },
        queueConfig: text.encode(`queue-of-${name}`),
      });
    const [alice, bob, carol, dave] = await Promise.all(["alice", "bob", "carol", "dave"].map(kp));
    if (alice === undefined || bob === undefined || carol === undefined || dave === undefined)
      throw new Error("no key packages");
    const created = await createPhoenixGroup({
      cipherSuite: cs,
      groupId: text.encode(`g-${Math.random()}`),
      keyPackage: alice.publicPackage,
      privateKeyPackage: alice.privatePackage,
      roles: [{ subject: { kind: "pseudonym", pseudonym: text.encode("alice") }, role: "admin" }],
    });
    let a: ClientState = created.state;
    const add = await addMembers(a, cs, [bob.publicPackage, carol.publicPackage, dave.publicPackage]);
    expect(commitRemovesMembers(a, add.commit)).toBe(false);
    a = add.newState;
    const join = (k: typeof bob) =>
      joinFromWelcome(add.welcome as Uint8Array, k.publicPackage, k.privatePackage, cs, a.ratchetTree);
    let b = await join(bob);
    let c = await join(carol);
    const d = await join(dave);

    const update = await updateOwnLeaf(b, cs);
    expect(commitRemovesMembers(b, update.commit)).toBe(false);

    // Alice removes Carol: Alice and Bob derive the same key; it differs from the one before.
    const before = await exportGroupStateEarKey(a, cs);
    const rm = await removeMembers(a, cs, [c.privatePath.leafIndex]);
    expect(commitRemovesMembers(a, rm.commit)).toBe(true);
    const bobRes = await processIncoming(b, cs, rm.commit);
    const carolRes = await processIncoming(c, cs, rm.commit);
    expect(carolRes.kind === "handshake" && carolRes.removedFromGroup).toBe(true);
    a = rm.newState;
    b = bobRes.newState;
    c = carolRes.newState;
    const next = await exportGroupStateEarKey(a, cs);
    expect(await exportGroupStateEarKey(b, cs)).toEqual(next);
    expect(next).not.toEqual(before);
    expect(next).toHaveLength(32);

    // Dave leaves by proposal; Alice commits it by reference: that rotates too.
    const dRes = await processIncoming(d, cs, rm.commit);
    const p = await proposeSelfRemove(dRes.newState, cs);
    a = (await processIncoming(a, cs, p.proposal)).newState;
    const byRef = await commitPendingProposals(a, cs);
    expect(commitRemovesMembers(a, byRef.commit)).toBe(true);
    // Without the stored proposal the reference is unknown: no Remove is seen.
    expect(commitRemovesMembers(b, byRef.commit)).toBe(false);
  });
});
