// Periodic self-update: a client refreshes its leaf in every conversation where it is older than
// the configured age (on demand with updateStaleKeys, periodically while listening), and the
// other members keep exchanging messages with it afterwards.
import { eventually } from "@phoenix/test-harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PhoenixClient } from "../src/index.js";
import { connectUsers, syncUntil, texts, World } from "./support/world.js";

describe("periodic key updates", () => {
  let world: World;
  let alice: PhoenixClient;
  let bob: PhoenixClient;
  let group: string;
  beforeAll(async () => {
    world = await World.start();
    alice = await world.register("Alice");
    bob = await world.register("Bob");
    await connectUsers(alice, bob);
    group = await alice.createConversation("Key hygiene");
    await alice.invite(group, [bob.userId]);
    await syncUntil(bob, () => bob.conversations().some((c) => c.id === group), "the Welcome");
  });
  afterAll(async () => {
    await world?.stop();
  });

  it("updates exactly the conversations whose keys are older than the limit", async () => {
    const before = alice.conversation(group).keysUpdatedAt.getTime();
    const active = alice
      .conversations()
      .filter((c) => c.status === "active")
      .map((c) => c.id);

    const fresh = await alice.updateStaleKeys();
    expect(fresh).toEqual({ updated: [], errors: [] });

    const stale = await alice.updateStaleKeys(0);
    expect(stale.errors).toEqual([]);
    expect(stale.updated.sort()).toEqual(active.sort());
    expect(alice.conversation(group).keysUpdatedAt.getTime()).toBeGreaterThanOrEqual(before);
    expect((await alice.updateStaleKeys(60_000)).updated).toEqual([]);

    await alice.sendMessage(group, "after my update");
    await syncUntil(bob, () => texts(bob, group).includes("after my update"), "Alice's message");
    await bob.sendMessage(group, "got it");
    await syncUntil(alice, () => texts(alice, group).includes("got it"), "Bob's message");
    expect(bob.conversation(group).members.sort()).toEqual(alice.conversation(group).members.sort());
  });

  it("a listening client refreshes its keys by itself once they are older than the limit", async () => {
    const before = bob.conversation(group).keysUpdatedAt.getTime();
    const errors: string[] = [];
    const listener = bob.listen({ keyUpdateMaxAgeMs: 1000, onError: (e) => errors.push(e.message) });
    try {
      await eventually(() => bob.conversation(group).keysUpdatedAt.getTime() > before, {
        timeoutMs: 15_000,
        intervalMs: 100,
        message: () => `Bob's listener to update his keys (errors: ${errors.join("; ") || "none"})`,
      });
    } finally {
      await listener.stop();
    }
    expect(errors.filter((e) => e.startsWith("key update failed"))).toEqual([]);
    expect(bob.conversation(group).keysUpdatedAt.getTime()).toBeGreaterThan(before);

    await bob.sendMessage(group, "after my own update");
    await syncUntil(alice, () => texts(alice, group).includes("after my own update"), "Bob's message");
    await alice.sendMessage(group, "still reading you");
    await syncUntil(bob, () => texts(bob, group).includes("still reading you"), "Alice's message");
  });
});
