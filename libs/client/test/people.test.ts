// Real clients against a test homeserver: people are shown by their display names, read from the
// encrypted profiles they shared (in groups, connection offers and friendship packages), and told
// what happens to them (who came in with them, a rejected request, a new name).
import { Metadata, status } from "@grpc/grpc-js";
import { eventually } from "@phoenix/test-harness";
import { GrpcCallError } from "@phoenix/wire";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PhoenixClient, Transport } from "../src/index.js";
import { connectUsers, syncUntil, World } from "./support/world.js";

describe("people shown as people", () => {
  let world: World;
  beforeAll(async () => {
    world = await World.start();
  });
  afterAll(async () => {
    await world?.stop();
  });

  it("a joiner learns everyone added with it, and names members who are not its contacts", async () => {
    const alice = await world.register("Alice");
    const bob = await world.register("Bob");
    const carol = await world.register("Carol");
    const dave = await world.register("Dave");
    // Bob, Carol and Dave know Alice only.
    for (const other of [bob, carol, dave]) await connectUsers(alice, other);

    const group = await alice.createConversation("Lunch");
    await alice.invite(group, [bob.userId, carol.userId, dave.userId]);
    const named = (c: PhoenixClient, users: PhoenixClient[], name: (u: PhoenixClient) => string) => () =>
      c.conversations().some((x) => x.id === group) &&
      users.every((u) => c.displayNameOf(u.userId) === name(u));
    // Carol and Dave hand the group their profile keys after joining and say so.
    for (const c of [carol, dave])
      await syncUntil(
        c,
        named(c, [alice], (u) => u.displayName),
        "the Welcome",
      );
    await syncUntil(
      bob,
      named(bob, [carol, dave], (u) => u.displayName),
      "Carol's and Dave's profiles",
    );
    const joined = bob.messages(group).find((m) => m.kind === "system");
    expect(joined?.body).toBe("Alice added you, Carol and Dave");
    expect(joined?.event?.type).toBe("added");
    expect(joined?.event?.actor).toEqual({ userId: alice.userId, displayName: "Alice", self: false });
    expect(joined?.event?.users.map((p) => p.userId).sort()).toEqual(
      [bob.userId, carol.userId, dave.userId].sort(),
    );
    expect(alice.messages(group).map((m) => m.body)).toContain("you added Bob, Carol and Dave");

    await carol.sendMessage(group, "hi all");
    await syncUntil(bob, () => bob.messages(group).some((m) => m.body === "hi all"), "Carol's message");
    const hi = bob.messages(group).find((m) => m.body === "hi all");
    expect(hi?.senderPerson).toEqual({ userId: carol.userId, displayName: "Carol", self: false });
    // Not a contact, yet named.
    expect(bob.contacts().map((c) => c.userId)).not.toContain(carol.userId);

    // A new name reaches every member without a manual refresh, as an event.
    await alice.setDisplayName("Alicia");
    for (const c of [bob, carol, dave])
      await syncUntil(c, () => c.displayNameOf(alice.userId) === "Alicia", "Alice's new name");
    expect(dave.messages(group).map((m) => m.body)).toContain("Alice is now called Alicia");
    // Bob sees it in the group and in his connection with her; his contact list has the new name.
    const bobsConnection = bob.contacts().find((c) => c.userId === alice.userId);
    expect(bobsConnection?.displayName).toBe("Alicia");
    expect(bob.conversation(bobsConnection?.conversationId ?? "").title).toBe("Alicia");
    expect(bob.messages(bobsConnection?.conversationId ?? "").map((m) => m.body)).toContain(
      "Alice is now called Alicia",
    );
    // Old events are shown with the name known now.
    expect(bob.messages(group).find((m) => m.kind === "system")?.body).toBe(
      "Alicia added you, Carol and Dave",
    );
  });

  it("a listening member sees a new name as it happens", async () => {
    const gus = await world.register("Gus");
    const hal = await world.register("Hal");
    await connectUsers(gus, hal);
    let changes = 0;
    const listener = hal.listen({ onChange: () => changes++, keyUpdateMaxAgeMs: 0 });
    try {
      await gus.setDisplayName("Gustav");
      await eventually(() => hal.displayNameOf(gus.userId) === "Gustav", {
        timeoutMs: 15_000,
        message: "the new name at the listener",
      });
      const conversation = hal.contacts()[0]?.conversationId ?? "";
      expect(hal.messages(conversation).map((m) => m.body)).toContain("Gus is now called Gustav");
      // The app is told, so it can redraw.
      await eventually(() => changes > 0, { timeoutMs: 15_000, message: "onChange" });
    } finally {
      await listener.stop();
    }
  });

  it("a rename notice its group refuses is retried by later syncs, then given up", async () => {
    let refuse = false;
    const ivy = await world.register("Ivy", (transport: Transport) => ({
      ...transport,
      delivery: new Proxy(transport.delivery, {
        get(target, property, receiver) {
          if (property !== "sendMessage") return Reflect.get(target, property, receiver);
          return async (...args: Parameters<typeof target.sendMessage>) => {
            if (refuse)
              throw new GrpcCallError("/phoenix.delivery.v1.DeliveryService/SendMessage", {
                code: status.PERMISSION_DENIED,
                details: "refused by the test",
                metadata: new Metadata(),
              });
            return target.sendMessage(...args);
          };
        },
      }),
    }));
    const jon = await world.register("Jon");
    await connectUsers(ivy, jon);
    refuse = true;
    const renamed = await ivy.setDisplayName("Ivy B.");
    expect(renamed.errors.join()).toMatch(/^profile notice: .*refused by the test/);
    const failures: number[] = [];
    for (let i = 0; i < 6; i++) failures.push((await ivy.sync()).errors.length);
    // Four more tries (five in all), then the notice is dropped: syncs are clean again.
    expect(failures).toEqual([1, 1, 1, 1, 0, 0]);
    // Jon was never told; he still reads the new name when he asks.
    await jon.sync();
    expect(jon.displayNameOf(ivy.userId)).toBe("Ivy");
    await jon.refreshProfiles();
    expect(jon.displayNameOf(ivy.userId)).toBe("Ivy B.");
  });

  it("a connection request carries the requester's name; a rejection reaches the requester", async () => {
    let forgeNext = false;
    const erin = await world.register("Erin");
    // Frank's rejection is preceded by a copy with a wrong MAC: Erin must not accept that one.
    const frank = await world.register("Frank", (transport: Transport) => ({
      ...transport,
      auth: new Proxy(transport.auth, {
        get(target, property, receiver) {
          if (property !== "enqueueConnectionOffer") return Reflect.get(target, property, receiver);
          return async (...args: Parameters<typeof target.enqueueConnectionOffer>) => {
            const [request] = args;
            if (forgeNext) {
              forgeNext = false;
              const forged = request.connectionOffer.slice();
              forged[forged.length - 1] = (forged[forged.length - 1] ?? 0) ^ 1;
              await target.enqueueConnectionOffer({ ...request, connectionOffer: forged });
            }
            return target.enqueueConnectionOffer(...args);
          };
        },
      }),
    }));
    await erin.connect(frank.userId);
    await syncUntil(frank, () => frank.connectionRequests().length === 1, "Erin's request");
    const [request] = frank.connectionRequests();
    expect(request).toMatchObject({ direction: "incoming", userId: erin.userId, displayName: "Erin" });

    forgeNext = true;
    await frank.rejectConnection(request?.id ?? -1);
    expect(frank.connectionRequests()[0]?.status).toBe("rejected");
    const first = await erin.sync();
    expect(first.errors.join("\n")).toContain("does not authenticate");
    await syncUntil(erin, () => erin.connectionRequests()[0]?.status === "rejected", "the rejection");
    expect(erin.contacts()).toEqual([]);
  });
});
