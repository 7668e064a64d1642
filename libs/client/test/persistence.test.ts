import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NotRegisteredError, PhoenixClient } from "../src/index.js";
import { connectUsers, syncUntil, texts, World } from "./support/world.js";

describe("a client re-opened from its store", () => {
  let world: World;
  beforeAll(async () => {
    world = await World.start();
  });
  afterAll(async () => {
    await world?.stop();
  });

  it("keeps its contacts, conversations, unread counts and keeps working", async () => {
    const alice = await world.register("Alice");
    let bob = await world.register("Bob");
    await connectUsers(alice, bob);
    const group = await alice.createConversation("Plans");
    await alice.invite(group, [bob.userId]);
    await syncUntil(bob, () => bob.conversations().some((c) => c.id === group), "the Welcome");
    await alice.sendMessage(group, "before restart");
    await syncUntil(bob, () => texts(bob, group).includes("before restart"), "the message");
    const before = {
      userId: bob.userId,
      contacts: bob.contacts(),
      conversations: bob.conversations(),
      messages: bob.messages(group),
    };

    // Messages arrive while Bob is offline.
    await bob.close();
    await alice.sendMessage(group, "while you were away");
    const conn = alice.contacts()[0]?.conversationId as string;
    await alice.sendMessage(conn, "direct while away");

    bob = await world.reopen("Bob");
    expect(bob.userId).toBe(before.userId);
    expect(bob.contacts()).toEqual(before.contacts);
    expect(bob.conversations()).toEqual(before.conversations);
    expect(bob.messages(group)).toEqual(before.messages);

    await syncUntil(bob, () => texts(bob, group).includes("while you were away"), "the offline message");
    await syncUntil(bob, () => texts(bob, conn).includes("direct while away"), "the offline direct message");
    await bob.sendMessage(group, "after restart");
    await syncUntil(
      alice,
      () => texts(alice, group).includes("after restart"),
      "Bob's message after restart",
    );

    // Nothing is processed twice after a restart.
    expect(texts(bob, group).filter((t) => t === "before restart")).toHaveLength(1);
  });

  it("a second client on the same store file sees the group state the first one saved", async () => {
    // Each client keeps the MLS states it decoded; one whose store row has changed underneath it
    // (another process on the same file) must decode the new state, not send with its old one:
    // that would reuse a ratchet generation the recipients have already consumed.
    const alice = await world.register("Alice2");
    const bob = await world.register("Bob2");
    await connectUsers(alice, bob);
    const group = await alice.createConversation("Shared store");
    await alice.invite(group, [bob.userId]);
    await syncUntil(bob, () => bob.conversations().some((c) => c.id === group), "the Welcome");
    const other = await world.reopen("Alice2");
    await other.sendMessage(group, "from the other process");
    await alice.sendMessage(group, "from the first");
    await other.sendMessage(group, "from the other again");
    await syncUntil(bob, () => texts(bob, group).includes("from the other again"), "the third message");
    expect(texts(bob, group)).toEqual(["from the other process", "from the first", "from the other again"]);
    const result = await bob.sync();
    expect(result.errors).toEqual([]);
  });

  it("an empty store is not a registered client", async () => {
    await expect(
      PhoenixClient.open({ transport: world.transport(), storePath: world.storePath("nobody") }),
    ).rejects.toBeInstanceOf(NotRegisteredError);
  });
});
