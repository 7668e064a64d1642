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

describe("a send whose answer is lost", () => {
  let world: World;
  let alice: PhoenixClient;
  let bob: PhoenixClient;
  /** Calls of Alice's sendMessage that reach the DS but whose answer is replaced by UNAVAILABLE. */
  let answersToLose = 0;
  let sendCalls = 0;

  beforeAll(async () => {
    world = await World.start();
    alice = await world.register("Alice", (transport: Transport) => ({
      ...transport,
      delivery: new Proxy(transport.delivery, {
        get(target, property, receiver) {
          if (property !== "sendMessage") return Reflect.get(target, property, receiver);
          return async (...args: Parameters<typeof target.sendMessage>) => {
            sendCalls++;
            const answer = await target.sendMessage(...args);
            if (answersToLose === 0) return answer;
            answersToLose--;
            throw new GrpcCallError("/phoenix.delivery.v1.DeliveryService/SendMessage", {
              code: status.UNAVAILABLE,
              details: "read ECONNRESET",
              metadata: new Metadata(),
            });
          };
        },
      }),
    }));
    bob = await world.register("Bob");
    await connectUsers(alice, bob);
  });
  afterAll(async () => {
    await world?.stop();
  });

  it("resolves once, and the recipient decrypts the message exactly once", async () => {
    const id = await alice.createConversation("lost answers");
    await alice.invite(id, [bob.userId]);
    await syncUntil(bob, () => bob.conversations().some((c) => c.id === id), "the group");

    answersToLose = 1;
    sendCalls = 0;
    await alice.sendMessage(id, "sent while the answer got lost");
    // The DS applied the first call; the second was the same request, refused as a replay.
    expect(sendCalls).toBe(2);
    await alice.sendMessage(id, "the next one");

    // syncUntil fails on a message Bob could not process (the bug: a copy under a used generation).
    await syncUntil(bob, () => texts(bob, id).includes("the next one"), "both messages");
    expect((await bob.sync()).errors).toEqual([]);
    expect(texts(bob, id)).toEqual(["sent while the answer got lost", "the next one"]);
  });
});
