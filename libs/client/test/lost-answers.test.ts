// A DS call whose answer is lost (the edge gateway or the DS crashed after the DS committed, the
// connection reset): the client cannot tell whether the message went out. Found by the chaos run
// (libs/test-harness/src/chaos, docs/chaos.md): the app tried again, the client encrypted the
// text afresh under the MLS generation it had already used, and every recipient got a copy it
// could not decrypt ("Desired gen in the past"). The client now resends the identical request.
import { Metadata, status } from "@grpc/grpc-js";
import { GrpcCallError } from "@phoenix/wire";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PhoenixClient, Transport } from "../src/index.js";
import { connectUsers, syncUntil, texts, World } from "./support/world.js";

/** Calls of one DS method that reach the DS but whose answer is replaced by UNAVAILABLE. */
const losing: { method: "sendMessage" | "groupOperation"; answers: number; calls: number } = {
  method: "sendMessage",
  answers: 0,
  calls: 0,
};

/** A transport whose DS answers to `losing.method` get lost while `losing.answers` lasts. */
function lossy(transport: Transport): Transport {
  return {
    ...transport,
    delivery: new Proxy(transport.delivery, {
      get(target, property, receiver) {
        if (property !== losing.method) return Reflect.get(target, property, receiver);
        const method = Reflect.get(target, property, receiver) as (...args: unknown[]) => Promise<unknown>;
        return async (...args: unknown[]) => {
          losing.calls++;
          const answer = await method.apply(target, args);
          if (losing.answers === 0) return answer;
          losing.answers--;
          throw new GrpcCallError(`/phoenix.delivery.v1.DeliveryService/${String(property)}`, {
            code: status.UNAVAILABLE,
            details: "read ECONNRESET",
            metadata: new Metadata(),
          });
        };
      },
    }),
  };
}

describe("a DS call whose answer is lost", () => {
  let world: World;
  let alice: PhoenixClient;
  let bob: PhoenixClient;
  let carol: PhoenixClient;

  beforeAll(async () => {
    world = await World.start();
    alice = await world.register("Alice", lossy);
    bob = await world.register("Bob");
    carol = await world.register("Carol");
    await connectUsers(alice, bob);
    await connectUsers(alice, carol);
  });
  afterAll(async () => {
    await world?.stop();
  });

  it("a send resolves once, and the recipient decrypts the message exactly once", async () => {
    const id = await alice.createConversation("lost answers");
    await alice.invite(id, [bob.userId]);
    await syncUntil(bob, () => bob.conversations().some((c) => c.id === id), "the group");

    Object.assign(losing, { method: "sendMessage", answers: 1, calls: 0 });
    await alice.sendMessage(id, "sent while the answer got lost");
    // The DS applied the first call; the second was the same request, refused as a replay.
    expect(losing.calls).toBe(2);
    await alice.sendMessage(id, "the next one");

    // syncUntil fails on a message Bob could not process (the bug: a copy under a used generation).
    await syncUntil(bob, () => texts(bob, id).includes("the next one"), "both messages");
    expect((await bob.sync()).errors).toEqual([]);
    expect(texts(bob, id)).toEqual(["sent while the answer got lost", "the next one"]);
  });

  it("a removal commit is the committer's although its answer was lost (EAR key rotated, epoch gone)", async () => {
    // Found by the chaos run: the identical retry was refused for its old EAR key and epoch, and
    // the committer was stuck. The DS now answers "replayed" to a copy of a request it applied.
    const id = await alice.createConversation("lost commit");
    await alice.invite(id, [bob.userId, carol.userId]);
    await syncUntil(carol, () => carol.conversations().some((c) => c.id === id), "the group");

    Object.assign(losing, { method: "groupOperation", answers: 1, calls: 0 });
    await alice.remove(id, [carol.userId]);
    expect(losing.calls).toBe(2);
    expect(alice.conversation(id).members).not.toContain(carol.userId);

    // The group goes on under the new epoch and key.
    await alice.sendMessage(id, "after the lost answer");
    await syncUntil(bob, () => texts(bob, id).includes("after the lost answer"), "the message");
    expect(bob.conversation(id).members).not.toContain(carol.userId);
    expect((await bob.sync()).errors).toEqual([]);
  });
});
