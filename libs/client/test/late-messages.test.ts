// Messages of an earlier epoch that a member processes after a commit it made itself (the message
// was still in its queue), and commits that hand a removed member's leaf to a joiner. Found by the
// randomized runs of libs/test-harness (docs/federation-testing.md).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PhoenixClient } from "../src/index.js";
import { connectUsers, syncUntil, texts, World } from "./support.js";

describe("late messages and reused leaves", () => {
  let world: World;
  let alice: PhoenixClient;
  let bob: PhoenixClient;
  let carol: PhoenixClient;
  let dave: PhoenixClient;

  beforeAll(async () => {
    world = await World.start();
    alice = await world.register("Alice");
    bob = await world.register("Bob");
    carol = await world.register("Carol");
    dave = await world.register("Dave");
    for (const other of [bob, carol, dave]) await connectUsers(alice, other);
  });
  afterAll(async () => {
    await world?.stop();
  });

  /** A group of Alice (admin) and `others`, everyone synced. */
  async function group(title: string, others: PhoenixClient[]): Promise<string> {
    const id = await alice.createConversation(title);
    await alice.invite(
      id,
      others.map((o) => o.userId),
    );
    for (const o of others)
      await syncUntil(o, () => o.conversations().some((c) => c.id === id && c.title === title), "the group");
    return id;
  }

  function senderOf(client: PhoenixClient, id: string, body: string): string | undefined {
    return client.messages(id).find((m) => m.kind === "text" && m.body === body)?.sender;
  }

  it("a message sent just before its sender was removed names the sender at the remover", async () => {
    const id = await group("late-removed", [bob, carol]);
    await bob.sendMessage(id, "sent before my removal");
    await carol.sendMessage(id, "sent before the commit");
    // Alice commits without syncing first: both messages (previous epoch) are still in her queue.
    await alice.remove(id, [bob.userId]);
    await syncUntil(alice, () => texts(alice, id).includes("sent before my removal"), "Bob's message");
    expect(senderOf(alice, id, "sent before my removal")).toBe(bob.userId);
    expect(senderOf(alice, id, "sent before the commit")).toBe(carol.userId);
    // Carol processes them in order, before the commit.
    await syncUntil(carol, () => !carol.conversation(id).members.includes(bob.userId), "the removal");
    expect(senderOf(carol, id, "sent before my removal")).toBe(bob.userId);
  });

  it("a late message from a leaf that a joiner took over since names the old member, not the joiner", async () => {
    const id = await group("late-reused", [bob, carol]);
    await carol.sendMessage(id, "carol before her removal");
    // Removing Carol blanks her leaf; Dave, added next, takes it (the leftmost blank leaf).
    await alice.remove(id, [carol.userId]);
    await alice.invite(id, [dave.userId]);
    await syncUntil(alice, () => texts(alice, id).includes("carol before her removal"), "Carol's message");
    expect(senderOf(alice, id, "carol before her removal")).toBe(carol.userId);
    expect(alice.conversation(id).members.sort()).toEqual([alice.userId, bob.userId, dave.userId].sort());
  });

  it("a commit that removes a leaver and adds a joiner on the same leaf shows the joiner, not the leaver", async () => {
    const id = await group("same-commit", [bob, carol]);
    await bob.leave(id);
    // Alice has not seen Bob's self-remove: the DS refuses her commit without it, she catches up
    // and commits the Remove and the Add together; Dave lands on Bob's blanked leaf.
    await alice.invite(id, [dave.userId]);
    const expected = [alice.userId, carol.userId, dave.userId].sort();
    expect(alice.conversation(id).members.sort()).toEqual(expected);
    await syncUntil(carol, () => carol.conversation(id).members.includes(dave.userId), "the commit");
    expect(carol.conversation(id).members.sort()).toEqual(expected);
    await syncUntil(bob, () => bob.conversation(id).status === "inactive", "the commit of the leave");
    await syncUntil(dave, () => dave.conversations().some((c) => c.id === id), "the Welcome");
    expect(dave.conversation(id).members.sort()).toEqual(expected);
    // Dave's messages are his, at every member.
    await dave.sendMessage(id, "dave here");
    await syncUntil(carol, () => texts(carol, id).includes("dave here"), "Dave's message");
    expect(senderOf(carol, id, "dave here")).toBe(dave.userId);
    await syncUntil(alice, () => texts(alice, id).includes("dave here"), "Dave's message");
    expect(senderOf(alice, id, "dave here")).toBe(dave.userId);
  });
});
