import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UnknownUserError } from "../src/index.js";
import { connectUsers, syncUntil, texts, World } from "./support/world.js";

describe("two users", () => {
  let world: World;
  beforeAll(async () => {
    world = await World.start();
  });
  afterAll(async () => {
    await world?.stop();
  });

  it("register, connect, exchange messages both ways with unread counts", async () => {
    const alice = await world.register("Alice");
    const bob = await world.register("Bob");
    await connectUsers(alice, bob);

    expect(alice.contacts()).toEqual([expect.objectContaining({ userId: bob.userId, displayName: "Bob" })]);
    expect(bob.contacts()).toEqual([expect.objectContaining({ userId: alice.userId, displayName: "Alice" })]);
    const aliceConv = alice.contacts()[0]?.conversationId as string;
    const bobConv = bob.contacts()[0]?.conversationId as string;
    expect(aliceConv).toBe(bobConv);
    expect(alice.conversation(aliceConv)).toMatchObject({
      kind: "connection",
      title: "Bob",
      status: "active",
    });
    expect(alice.conversation(aliceConv).members.sort()).toEqual([alice.userId, bob.userId].sort());

    await alice.sendMessage(aliceConv, "hello Bob");
    await syncUntil(bob, () => texts(bob, bobConv).includes("hello Bob"), "Alice's message");
    expect(bob.messages(bobConv).find((m) => m.body === "hello Bob")?.sender).toBe(alice.userId);
    expect(bob.conversation(bobConv).unread).toBeGreaterThan(0);
    bob.markRead(bobConv);
    expect(bob.conversation(bobConv).unread).toBe(0);

    for (let i = 0; i < 10; i++) await bob.sendMessage(bobConv, `reply ${i}`);
    await syncUntil(alice, () => texts(alice, aliceConv).length >= 11, "Bob's replies");
    expect(texts(alice, aliceConv)).toEqual([
      "hello Bob",
      ...Array.from({ length: 10 }, (_, i) => `reply ${i}`),
    ]);
    expect(alice.conversation(aliceConv).unread).toBeGreaterThanOrEqual(10);
  });

  it("connect by handle, then display names are exchanged and updated", async () => {
    const dora = await world.register("Dora");
    const erin = await world.register("Erin");
    await erin.createHandle("erin_the_great");
    expect(erin.handles()).toEqual(["erin_the_great"]);

    await dora.connectByHandle("erin_the_great");
    await syncUntil(
      erin,
      () => erin.connectionRequests().some((r) => r.direction === "incoming"),
      "the request",
    );
    const req = erin.connectionRequests().find((r) => r.direction === "incoming");
    expect(req?.userId).toBe(dora.userId);
    await erin.acceptConnection(req?.id as number);
    await syncUntil(dora, () => dora.contacts().some((c) => c.userId === erin.userId), "Erin as a contact");
    expect(dora.contacts()[0]).toMatchObject({ userId: erin.userId, displayName: "Erin" });
    expect(dora.connectionRequests()).toEqual([
      expect.objectContaining({ direction: "outgoing", userId: "erin_the_great", status: "accepted" }),
    ]);

    await erin.setDisplayName("Erin B.");
    await dora.refreshContactProfiles();
    expect(dora.contacts()[0]?.displayName).toBe("Erin B.");
    await expect(dora.connectByHandle("nobody_here")).rejects.toBeInstanceOf(UnknownUserError);
  });

  it("a rejected request leaves both sides without a contact, and the requester is told", async () => {
    const fred = await world.register("Fred");
    const gina = await world.register("Gina");
    await fred.connect(gina.userId);
    await syncUntil(gina, () => gina.connectionRequests().length === 1, "the request");
    const req = gina.connectionRequests()[0];
    expect(req).toMatchObject({ direction: "incoming", userId: fred.userId, status: "pending" });
    await gina.rejectConnection(req?.id as number);
    expect(gina.connectionRequests()[0]?.status).toBe("rejected");
    await expect(gina.acceptConnection(req?.id as number)).rejects.toThrow(/no pending incoming/);
    await fred.sync();
    expect(fred.contacts()).toEqual([]);
    expect(gina.contacts()).toEqual([]);
    expect(fred.connectionRequests()).toEqual([
      expect.objectContaining({ direction: "outgoing", status: "rejected" }),
    ]);
  });

  it("connecting to a user that does not exist fails with a clear error", async () => {
    const carol = await world.register("Carol");
    const ghost = "00000000-0000-4000-8000-000000000000@alpha.example";
    await expect(carol.connect(ghost)).rejects.toBeInstanceOf(UnknownUserError);
    await expect(carol.connect(ghost)).rejects.toThrow(/no user/);
    expect(carol.connectionRequests()).toEqual([]);
  });
});
