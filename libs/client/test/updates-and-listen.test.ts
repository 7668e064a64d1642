import { eventually } from "@phoenix/test-harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PhoenixClient } from "../src/index.js";
import { connectUsers, syncUntil, texts, World } from "./support/world.js";

describe("group maintenance and live listening", () => {
  let world: World;
  let alice: PhoenixClient;
  let bob: PhoenixClient;
  let carol: PhoenixClient;
  beforeAll(async () => {
    world = await World.start();
    alice = await world.register("Alice");
    bob = await world.register("Bob");
    carol = await world.register("Carol");
    await connectUsers(alice, bob);
    await connectUsers(alice, carol);
  });
  afterAll(async () => {
    await world?.stop();
  });

  it("a member's self-update keeps the membership and messages keep flowing", async () => {
    const group = await alice.createConversation("Updates");
    await alice.invite(group, [bob.userId, carol.userId]);
    await syncUntil(bob, () => bob.conversations().some((c) => c.id === group), "the Welcome");
    await syncUntil(carol, () => carol.conversations().some((c) => c.id === group), "the Welcome");
    const members = alice.conversation(group).members.sort();

    await bob.updateKeys(group);
    await carol.sendMessage(group, "after Bob's update");
    await syncUntil(alice, () => texts(alice, group).includes("after Bob's update"), "Carol's message");
    await syncUntil(bob, () => texts(bob, group).includes("after Bob's update"), "Carol's message");
    for (const c of [alice, bob, carol]) expect(c.conversation(group).members.sort()).toEqual(members);
  });

  it("remove and re-add a user 10 times, then messages both ways", async () => {
    const group = await alice.createConversation("Revolving door");
    for (let round = 0; round < 10; round++) {
      await alice.invite(group, [bob.userId]);
      await syncUntil(
        bob,
        () =>
          bob
            .conversations()
            .some((c) => c.id === group && c.status === "active" && c.members.includes(alice.userId)),
        `Welcome ${round}`,
      );
      await alice.remove(group, [bob.userId]);
      await syncUntil(bob, () => bob.conversation(group).status === "inactive", `removal ${round}`);
    }
    await alice.invite(group, [bob.userId]);
    await syncUntil(
      bob,
      () => bob.conversations().some((c) => c.id === group && c.status === "active"),
      "the last Welcome",
    );
    await alice.sendMessage(group, "welcome back");
    await syncUntil(bob, () => texts(bob, group).includes("welcome back"), "Alice's message");
    await bob.sendMessage(group, "glad to be back");
    await syncUntil(alice, () => texts(alice, group).includes("glad to be back"), "Bob's message");
    expect(alice.conversation(group).members.sort()).toEqual([alice.userId, bob.userId].sort());
  });

  it("a listening client receives messages and connection requests without polling", async () => {
    const dave = await world.register("Dave");
    const errors: Error[] = [];
    const listener = dave.listen({ onError: (e) => errors.push(e) });
    try {
      await alice.connect(dave.userId);
      await eventually(() => dave.connectionRequests().some((r) => r.status === "pending"), {
        timeoutMs: 15_000,
        message: "the offer",
      });
      const req = dave.connectionRequests()[0];
      await dave.acceptConnection(req?.id as number);
      await syncUntil(
        alice,
        () => alice.contacts().some((c) => c.userId === dave.userId),
        "Dave as a contact",
      );
      const conv = alice.contacts().find((c) => c.userId === dave.userId)?.conversationId as string;
      for (let i = 0; i < 10; i++) await alice.sendMessage(conv, `live ${i}`);
      await eventually(() => texts(dave, conv).length === 10, {
        timeoutMs: 15_000,
        message: "ten live messages",
      });
      expect(texts(dave, conv)).toEqual(Array.from({ length: 10 }, (_, i) => `live ${i}`));
      expect(dave.conversation(conv).unread).toBe(10);
    } finally {
      await listener.stop();
    }
    expect(errors).toEqual([]);
  });

  it("a listener re-opens its stream after the QS restarts and misses nothing", async () => {
    const erin = await world.register("Erin");
    await connectUsers(alice, erin);
    const conv = erin.contacts()[0]?.conversationId as string;
    const streamErrors: Error[] = [];
    const listener = erin.listen({ onError: (e) => streamErrors.push(e), maxBackoffMs: 200 });
    try {
      await alice.sendMessage(conv, "before the outage");
      await eventually(() => texts(erin, conv).includes("before the outage"), {
        timeoutMs: 15_000,
        message: "the first message",
      });
      await world.hs.restartQueue();
      for (let i = 0; i < 3; i++) await alice.sendMessage(conv, `after ${i}`);
      await eventually(() => texts(erin, conv).length === 4, {
        timeoutMs: 15_000,
        message: "the messages after the restart",
      });
      expect(texts(erin, conv)).toEqual(["before the outage", "after 0", "after 1", "after 2"]);
    } finally {
      await listener.stop();
    }
    // The outage was noticed (and survived) by the listener.
    expect(streamErrors.length).toBeGreaterThan(0);
  });
});
