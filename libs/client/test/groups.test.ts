import { eventually } from "@phoenix/test-harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConversationInactiveError, NotAContactError } from "../src/index.js";
import { connectUsers, syncUntil, texts, World } from "./support/world.js";

describe("a three-user group", () => {
  let world: World;
  beforeAll(async () => {
    world = await World.start();
  });
  afterAll(async () => {
    await world?.stop();
  });

  it("invite, messages, remove, re-add, leave and delete", async () => {
    const alice = await world.register("Alice");
    const bob = await world.register("Bob");
    const carol = await world.register("Carol");
    await connectUsers(alice, bob);
    await connectUsers(alice, carol);

    const group = await alice.createConversation("Project");
    expect(alice.conversation(group)).toMatchObject({
      kind: "group",
      title: "Project",
      members: [alice.userId],
    });
    await alice.invite(group, [bob.userId, carol.userId]);
    await syncUntil(bob, () => bob.conversations().some((c) => c.id === group), "the Welcome");
    await syncUntil(carol, () => carol.conversations().some((c) => c.id === group), "the Welcome");
    await syncUntil(bob, () => bob.conversation(group).title === "Project", "the group's title");
    await syncUntil(carol, () => carol.conversation(group).title === "Project", "the group's title");
    const everyone = [alice.userId, bob.userId, carol.userId].sort();
    for (const c of [alice, bob, carol]) expect(c.conversation(group).members.sort()).toEqual(everyone);
    // All members see who added whom, by name: one event for the commit that added both.
    expect(alice.messages(group).map((m) => m.body)).toContain("you added Bob and Carol");
    // Carol is no contact of Bob's: her name comes from the profile key she handed the group.
    await syncUntil(bob, () => bob.displayNameOf(carol.userId) === "Carol", "Carol's profile");
    expect(bob.messages(group).map((m) => m.body)).toContain("Alice added you and Carol");

    await bob.sendMessage(group, "hi from Bob");
    await syncUntil(alice, () => texts(alice, group).includes("hi from Bob"), "Bob's message");
    await syncUntil(carol, () => texts(carol, group).includes("hi from Bob"), "Bob's message");
    expect(carol.messages(group).find((m) => m.body === "hi from Bob")?.sender).toBe(bob.userId);

    // Remove Carol: she sees the conversation inactive, the others see her gone.
    await alice.remove(group, [carol.userId]);
    await syncUntil(carol, () => carol.conversation(group).status === "inactive", "the removal");
    await syncUntil(bob, () => !bob.conversation(group).members.includes(carol.userId), "the removal");
    expect(bob.messages(group).map((m) => m.body)).toContain("Alice removed Carol");
    await expect(carol.sendMessage(group, "still here?")).rejects.toBeInstanceOf(ConversationInactiveError);

    // Re-add her; messages flow again (the re-join joins a fresh leaf).
    await alice.invite(group, [carol.userId]);
    await syncUntil(carol, () => carol.conversation(group).status === "active", "the second Welcome");
    await carol.sendMessage(group, "back again");
    await syncUntil(bob, () => texts(bob, group).includes("back again"), "Carol's message");

    // Bob leaves: his self-remove proposal is committed by another member.
    await bob.leave(group);
    await syncUntil(
      alice,
      () => !alice.conversation(group).members.includes(bob.userId),
      "Bob's leave committed",
    );
    await syncUntil(bob, () => bob.conversation(group).status === "inactive", "Bob's removal");
    await syncUntil(carol, () => !carol.conversation(group).members.includes(bob.userId), "Bob gone");
    expect(alice.messages(group).map((m) => m.body)).toContain("Bob left");
    expect(carol.messages(group).map((m) => m.body)).toContain("Bob left");
    expect(bob.messages(group).map((m) => m.body)).toContain("you left");

    await alice.sendMessage(group, "just us");
    await syncUntil(carol, () => texts(carol, group).includes("just us"), "Alice's message");

    // Inviting a stranger is refused locally.
    const dave = await world.register("Dave");
    await expect(alice.invite(group, [dave.userId])).rejects.toBeInstanceOf(NotAContactError);

    // Delete: every member sees the conversation inactive.
    await alice.deleteConversation(group);
    expect(alice.conversation(group).status).toBe("inactive");
    await syncUntil(carol, () => carol.conversation(group).status === "inactive", "the deletion");
  });

  it("a member whose account is gone is removed by the next commit, as the DS requires", async () => {
    const alice = await world.register("Alice2");
    const bob = await world.register("Bob2");
    const carol = await world.register("Carol2");
    await connectUsers(alice, bob);
    await connectUsers(alice, carol);
    const group = await alice.createConversation("Leftovers");
    await alice.invite(group, [bob.userId, carol.userId]);
    await syncUntil(bob, () => bob.conversations().some((c) => c.id === group), "the Welcome");
    await syncUntil(carol, () => carol.conversations().some((c) => c.id === group), "the Welcome");

    await carol.deleteAccount();
    // The next fan-out finds Carol's queue gone; the QS reports it to the DS, which then refuses
    // commits that do not remove her and sends a RequiredRemovals notice the client acts on.
    await alice.sendMessage(group, "anyone there?");
    const carolGone = () => !alice.conversation(group).members.includes(carol.userId);
    await eventually(
      async () => {
        if (carolGone()) return true;
        await alice.updateKeys(group);
        return carolGone();
      },
      { timeoutMs: 30_000, intervalMs: 200, message: "Alice's commit to remove Carol" },
    );
    expect(alice.conversation(group).members.sort()).toEqual([alice.userId, bob.userId].sort());
    await syncUntil(bob, () => !bob.conversation(group).members.includes(carol.userId), "Carol's removal");
    await bob.sendMessage(group, "still two of us");
    await syncUntil(alice, () => texts(alice, group).includes("still two of us"), "Bob's message");
  });
});
