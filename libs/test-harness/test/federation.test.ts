// Users of three federating homeservers (alpha, beta, gamma; gateways over TLS with a throw-away
// CA) connect, share groups and message each other with real clients, each client talking only to
// its own homeserver's edge gateway. The last test takes beta down for a while.
import type { PhoenixClient } from "@phoenix/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connectUsers,
  describeHits,
  type Federation,
  federationStores,
  membersOf,
  needlesFromClientDirs,
  scanSeizableStores,
  startFederation,
  summarizeSnapshotScan,
  syncUntil,
  systemTextsOf,
  textsOf,
} from "../src/index.js";

const ALPHA = "alpha.test";
const BETA = "beta.test";
const GAMMA = "gamma.test";

/** `sender` sends `text`; every one of `receivers` syncs until it has it. */
async function sendAndReceive(
  sender: PhoenixClient,
  conversationId: string,
  text: string,
  receivers: readonly PhoenixClient[],
): Promise<void> {
  await sender.sendMessage(conversationId, text);
  for (const r of receivers)
    await syncUntil(r, () => textsOf(r, conversationId).includes(text), `"${text}" at ${r.displayName}`);
}

/** Every client syncs until its member list of the conversation is `expected`. */
async function expectMembers(
  clients: readonly PhoenixClient[],
  conversationId: string,
  expected: readonly PhoenixClient[],
): Promise<void> {
  const want = expected.map((c) => c.userId).sort();
  for (const c of clients)
    await syncUntil(
      c,
      () => JSON.stringify(membersOf(c, conversationId)) === JSON.stringify(want),
      `${c.displayName}'s member list ${want.join(", ")}`,
    );
}

describe("three federating homeservers", () => {
  let fed: Federation;

  beforeAll(async () => {
    // Logs at info are kept, so the snapshot scan reads every line the services write.
    fed = await startFederation({
      domains: [ALPHA, BETA, GAMMA],
      tls: true,
      captureLogs: true,
      logLevel: "info",
    });
  }, 180_000);
  afterAll(async () => {
    await fed?.stopAll();
  }, 60_000);

  it("an alpha user connects to a beta user by user id; both are contacts and message both ways", async () => {
    const alice = await fed.client(ALPHA, "Alice");
    const bob = await fed.client(BETA, "Bob");
    const direct = await connectUsers(alice, bob);

    expect(alice.contacts().map((c) => c.userId)).toEqual([bob.userId]);
    expect(bob.contacts().map((c) => c.userId)).toEqual([alice.userId]);
    // Profiles travel too: each side reads the other's display name from the other domain's AS.
    await syncUntil(alice, () => alice.contacts()[0]?.displayName === "Bob", "Bob's display name");
    expect(bob.contacts()[0]?.displayName).toBe("Alice");

    await sendAndReceive(alice, direct, "hello from alpha", [bob]);
    await sendAndReceive(bob, direct, "hello from beta", [alice]);
    expect(textsOf(alice, direct)).toEqual(["hello from alpha", "hello from beta"]);
    expect(textsOf(bob, direct)).toEqual(["hello from alpha", "hello from beta"]);
  }, 120_000);

  it("a gamma user connects to a beta user by a handle looked up on beta", async () => {
    const bob = await fed.client(BETA, "Bob");
    const carol = await fed.client(GAMMA, "Carol");
    const handle = `bob-${bob.userId.slice(0, 8)}`;
    await bob.createHandle(handle);
    // The handle is beta's: on gamma nobody has it.
    await expect(carol.connectByHandle(handle)).rejects.toThrow(/no handle/);
    await carol.connectByHandle(handle, BETA);
    const incoming = () => bob.connectionRequests().find((r) => r.direction === "incoming");
    await syncUntil(bob, () => incoming()?.userId === carol.userId, "Carol's request through the handle");
    const direct = await bob.acceptConnection(incoming()?.id as number);
    await syncUntil(carol, () => carol.contacts().some((c) => c.userId === bob.userId), "Bob as a contact");
    await sendAndReceive(carol, direct, "found you by handle", [bob]);
  }, 120_000);

  it("invite, remove and leave across domains", async () => {
    const alice = await fed.client(ALPHA, "Alice");
    const bob = await fed.client(BETA, "Bob");
    const carol = await fed.client(GAMMA, "Carol");
    await connectUsers(alice, bob);
    await connectUsers(alice, carol);

    // Invite: the group lives on alpha's DS; Bob (beta) and Carol (gamma) join by Welcome.
    const group = await alice.createConversation("Across");
    await alice.invite(group, [bob.userId]);
    await expectMembers([alice, bob], group, [alice, bob]);
    await alice.invite(group, [carol.userId]);
    await expectMembers([alice, bob, carol], group, [alice, bob, carol]);
    const added = (c: PhoenixClient, who: PhoenixClient) =>
      c
        .messages(group)
        .some(
          (m) =>
            m.event?.type === "added" &&
            m.event.actor?.userId === alice.userId &&
            m.event.users.some((u) => u.userId === who.userId),
        );
    for (const c of [alice, bob]) expect(added(c, bob)).toBe(true);
    for (const c of [alice, bob, carol]) expect(added(c, carol)).toBe(true);
    await syncUntil(bob, () => bob.conversation(group).title === "Across", "the group's title at Bob");
    // Carol (gamma) is no contact of Bob's (beta): her name comes from her profile on gamma's AS.
    await syncUntil(bob, () => bob.displayNameOf(carol.userId) === "Carol", "Carol's profile at Bob");
    expect(systemTextsOf(bob, group)).toContain("Alice added Carol");
    await sendAndReceive(alice, group, "welcome both", [bob, carol]);
    await sendAndReceive(bob, group, "hi from beta", [alice, carol]);
    await sendAndReceive(carol, group, "hi from gamma", [alice, bob]);

    // Remove: the removed side sees the conversation inactive.
    await alice.remove(group, [carol.userId]);
    await syncUntil(carol, () => carol.conversation(group).status === "inactive", "Carol's group inactive");
    expect(systemTextsOf(carol, group)).toContain("Alice removed you");
    await expectMembers([alice, bob], group, [alice, bob]);
    await sendAndReceive(bob, group, "just us now", [alice]);
    expect(textsOf(carol, group)).not.toContain("just us now");

    // Leave: Bob's self-remove proposal is committed by Alice's client when it syncs.
    await bob.leave(group);
    await syncUntil(alice, () => membersOf(alice, group).length === 1, "Alice committing Bob's leave");
    expect(systemTextsOf(alice, group)).toContain("Bob left");
    await syncUntil(bob, () => bob.conversation(group).status === "inactive", "Bob's group inactive");
    expect(systemTextsOf(bob, group)).toContain("you left");
    await expect(bob.sendMessage(group, "still here?")).rejects.toThrow(/no longer active/);
  }, 240_000);

  it("a group over three domains: A invites B, B invites C, C removes A, B leaves", async () => {
    const a = await fed.client(ALPHA, "A");
    const b = await fed.client(BETA, "B");
    const c = await fed.client(GAMMA, "C");
    const c2 = await fed.client(GAMMA, "C2");
    // A↔B and B↔C (and B↔C2) are connected; A and the gamma users are not.
    await connectUsers(a, b);
    await connectUsers(b, c);
    await connectUsers(b, c2);
    expect(a.contacts().map((x) => x.userId)).toEqual([b.userId]);

    const group = await a.createConversation("Three domains");
    await a.invite(group, [b.userId]);
    await expectMembers([a, b], group, [a, b]);
    // Adding and removing other users is for admins: A makes B one, B makes C one.
    await a.grantAdmin(group, [b.userId]);
    await syncUntil(b, () => true, "A's role change");
    await b.invite(group, [c.userId, c2.userId]);
    await expectMembers([a, b, c, c2], group, [a, b, c, c2]);
    await sendAndReceive(c, group, "gamma says hi", [a, b, c2]);
    await b.grantAdmin(group, [c.userId]);
    await syncUntil(c, () => true, "B's role change");

    await c.remove(group, [a.userId]);
    await syncUntil(a, () => a.conversation(group).status === "inactive", "A removed");
    // C is no contact of A's: A read C's name with the key B handed the group when it added C.
    expect(systemTextsOf(a, group)).toContain("C removed you");
    await expectMembers([b, c, c2], group, [b, c, c2]);
    await sendAndReceive(b, group, "A is gone", [c, c2]);

    await b.leave(group);
    // The next sync of another member commits B's proposal.
    await syncUntil(c, () => !membersOf(c, group).includes(b.userId), "B's leave committed");
    await syncUntil(b, () => b.conversation(group).status === "inactive", "B's group inactive");
    await expectMembers([c, c2], group, [c, c2]);
    await sendAndReceive(c2, group, "two of us on gamma, group on alpha", [c]);
    await sendAndReceive(c, group, "and it still works", [c2]);
    // Nobody who left saw the later messages.
    expect(textsOf(a, group)).not.toContain("A is gone");
    expect(textsOf(b, group)).not.toContain("and it still works");
  }, 300_000);

  it("messages sent while the recipient's homeserver is down arrive after it returns, in order, once", async () => {
    const alice = await fed.client(ALPHA, "Alice");
    const bob = await fed.client(BETA, "Bob");
    const direct = await connectUsers(alice, bob);
    await sendAndReceive(alice, direct, "before", [bob]);

    const beta = fed.homeserver(BETA);
    await beta.stop();
    try {
      // The conversation lives on alpha's DS: Alice keeps sending, alpha's gateway keeps retrying.
      for (let i = 1; i <= 5; i++) await alice.sendMessage(direct, `while down ${i}`);
      await expect(bob.sync()).rejects.toThrow();
    } finally {
      await beta.restart();
    }
    const expected = ["before", ...[1, 2, 3, 4, 5].map((i) => `while down ${i}`)];
    await syncUntil(bob, () => textsOf(bob, direct).length >= expected.length, "the 5 messages", 60_000);
    expect(textsOf(bob, direct)).toEqual(expected);
    // Nothing arrives twice later either: one more message is the last one Bob gets.
    await sendAndReceive(alice, direct, "after", [bob]);
    expect(textsOf(bob, direct)).toEqual([...expected, "after"]);
  }, 180_000);

  it("a snapshot of every store of the three domains holds no identifier of the scenarios in the clear", async () => {
    const needles = await needlesFromClientDirs([fed.clientsDir]);
    const result = await scanSeizableStores(await federationStores(fed), needles);
    const { scan, unpadded } = result;
    const r = scan.report;
    console.info(summarizeSnapshotScan("federation", result, needles));
    expect(needles.needles.length).toBeGreaterThan(50);
    // Self-check: the AS and QS databases hold what they must, so the scan did read them.
    for (const place of ["auth user-id", "auth client-id", "queue queue-id"])
      expect(r.allowedByPlace[place] ?? 0, place).toBeGreaterThan(0);
    expect(r.hits, describeHits(r.hits)).toEqual([]);
    for (const ds of unpadded) expect(ds.unpadded, `${ds.database}: group state sizes`).toEqual([]);
  }, 180_000);
});
