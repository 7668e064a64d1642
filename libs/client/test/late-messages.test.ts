// Clients that are behind: messages of an earlier epoch that a member processes after a commit it
// made itself (the message was still in its queue), commits that hand a removed member's leaf to a
// joiner, a removed member acting before it noticed, an invitee removed before it joined. Found by
// the randomized runs of libs/test-harness (docs/federation-testing.md).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConversationInactiveError, type PhoenixClient } from "../src/index.js";
import { connectUsers, syncUntil, texts, World } from "./support/world.js";

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
    await syncUntil(
      carol,
      () =>
        !carol.conversation(id).members.includes(bob.userId) &&
        texts(carol, id).includes("sent before my removal"),
      "the removal and Bob's message",
    );
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

  it("a member removed before it noticed is refused with ConversationInactiveError when it sends, and sends nothing", async () => {
    const id = await group("removed-unaware", [bob, carol]);
    await alice.remove(id, [bob.userId]);
    // Bob has not synced: his app still shows the conversation active.
    expect(bob.conversation(id).status).toBe("active");
    await expect(bob.sendMessage(id, "am I still here?")).rejects.toBeInstanceOf(ConversationInactiveError);
    expect(bob.conversation(id).status).toBe("inactive");
    await expect(bob.leave(id)).rejects.toBeInstanceOf(ConversationInactiveError);
    await carol.sendMessage(id, "after the removal");
    await syncUntil(carol, () => texts(carol, id).includes("after the removal"), "her own message");
    expect(texts(carol, id)).not.toContain("am I still here?");
    expect(texts(alice, id)).not.toContain("am I still here?");
  });

  it("an invitee removed before it fetched its Welcome still joins, reads what it was sent, then sees the removal", async () => {
    const id = await group("removed-before-joining", [carol]);
    await alice.invite(id, [dave.userId]);
    await carol.sendMessage(id, "while Dave was in");
    await alice.remove(id, [dave.userId]);
    await carol.sendMessage(id, "after Dave left");
    // Dave comes online only now: the Welcome, the message, the removal (sync errors fail here).
    await syncUntil(
      dave,
      () => dave.conversations().some((c) => c.id === id && c.status === "inactive"),
      "the removal",
    );
    expect(texts(dave, id)).toEqual(["while Dave was in"]);
    expect(senderOf(dave, id, "while Dave was in")).toBe(carol.userId);
  });
});
