// Found by the chaos run (docs/chaos.md): a group's only admin commits without ever being refused,
// so it never caught up from its queue before committing. A member's message of epoch N waiting
// there was read after the admin had moved more than 4 epochs on — past the epochs whose secrets
// ts-mls keeps — and was lost to the admin ("Cannot process message, epoch too old"). A group
// operation now reads the queue first.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PhoenixClient } from "../src/index.js";
import { connectUsers, syncUntil, texts, World } from "./support/world.js";

describe("a committer that commits again and again", () => {
  let world: World;
  let alice: PhoenixClient;
  let bob: PhoenixClient;
  let dave: PhoenixClient;

  beforeAll(async () => {
    world = await World.start();
    alice = await world.register("Alice");
    bob = await world.register("Bob");
    dave = await world.register("Dave");
    await connectUsers(alice, bob);
    await connectUsers(alice, dave);
  });
  afterAll(async () => {
    await world?.stop();
  });

  it("still reads a member's message of an epoch it has since moved far beyond", async () => {
    const id = await alice.createConversation("busy admin");
    await alice.invite(id, [bob.userId, dave.userId]);
    await syncUntil(bob, () => bob.conversations().some((c) => c.id === id), "the group");
    await bob.sendMessage(id, "sent before the admin's commits");
    // Alice never syncs in between: six commits, six epochs on.
    for (let i = 0; i < 3; i++) {
      await alice.remove(id, [dave.userId]);
      await alice.invite(id, [dave.userId]);
    }
    await syncUntil(
      alice,
      () => texts(alice, id).includes("sent before the admin's commits"),
      "Bob's message",
    );
    expect((await alice.sync()).errors).toEqual([]);
  });
});
