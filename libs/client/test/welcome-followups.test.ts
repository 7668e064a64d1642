// Found by the chaos run (docs/chaos.md): a joiner whose call after joining — handing the group
// its profile key (DS UpdateProfileKey) or publishing new AddPackages (QS) — met a service being
// restarted reported the whole Welcome as not processed, although the join had been stored. The
// join now stands: the profile key upload stays due and is retried, new AddPackages are tried
// again at the next Welcome.
import { Metadata, status } from "@grpc/grpc-js";
import { GrpcCallError } from "@phoenix/wire";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PhoenixClient, Transport } from "../src/index.js";
import { connectUsers, syncUntil, texts, World } from "./support/world.js";

/** How many of the next calls of each method fail UNAVAILABLE before reaching the server. */
const failing = { updateProfileKey: 0, publishAddPackages: 0 };
const calls = { updateProfileKey: 0, publishAddPackages: 0 };

function unavailable(method: string): GrpcCallError {
  return new GrpcCallError(method, {
    code: status.UNAVAILABLE,
    details: "connect ECONNREFUSED",
    metadata: new Metadata(),
  });
}

/** Wraps one service of a transport so that `method` fails while `failing[method]` lasts. */
function flaky<S extends object>(service: S, method: keyof typeof failing): S {
  return new Proxy(service, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (property !== method) return value;
      return async (...args: unknown[]) => {
        calls[method]++;
        if (failing[method] > 0) {
          failing[method]--;
          throw unavailable(`/${method}`);
        }
        return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
      };
    },
  });
}

function withFlakyFollowUps(transport: Transport): Transport {
  return {
    ...transport,
    delivery: flaky(transport.delivery, "updateProfileKey"),
    queue: flaky(transport.queue, "publishAddPackages"),
  };
}

describe("a Welcome whose follow-up call meets a service that is away", () => {
  let world: World;
  let alice: PhoenixClient;
  let bob: PhoenixClient;

  beforeAll(async () => {
    world = await World.start();
    alice = await world.register("Alice");
    bob = await world.register("Bob", withFlakyFollowUps);
    await connectUsers(alice, bob);
  });
  afterAll(async () => {
    await world?.stop();
  });

  /** Alice makes a group with Bob; Bob syncs until he is in it (syncUntil fails on any sync error). */
  async function groupWithBob(title: string): Promise<string> {
    const id = await alice.createConversation(title);
    await alice.invite(id, [bob.userId]);
    await syncUntil(bob, () => bob.conversations().some((c) => c.id === id), title);
    return id;
  }

  it("keeps the join when the profile key upload fails, and uploads the key on the retry", async () => {
    Object.assign(failing, { updateProfileKey: 1 });
    calls.updateProfileKey = 0;
    const id = await groupWithBob("profile key");
    // The upload after joining failed; the same sync's pending work tried it again.
    expect(calls.updateProfileKey).toBe(2);
    expect(failing.updateProfileKey).toBe(0);
    expect((await bob.sync()).errors).toEqual([]);
    await alice.sendMessage(id, "hello Bob");
    await syncUntil(bob, () => texts(bob, id).includes("hello Bob"), "the message");
  });

  it("keeps the join when publishing new AddPackages fails, and publishes them at the next Welcome", async () => {
    // Bob has 4 ordinary AddPackages; the group above used one. The fourth Welcome uses the last
    // one and publishes new ones: that call fails.
    calls.publishAddPackages = 0;
    await groupWithBob("second");
    await groupWithBob("third");
    Object.assign(failing, { publishAddPackages: 1 });
    await groupWithBob("fourth");
    expect(calls.publishAddPackages).toBe(1);
    expect(failing.publishAddPackages).toBe(0);
    // Inviters now get Bob's last-resort package; that Welcome publishes new ones, which works.
    const fifth = await groupWithBob("fifth");
    expect(calls.publishAddPackages).toBe(2);
    const sixth = await groupWithBob("sixth");
    expect(calls.publishAddPackages).toBe(2);
    expect(bob.conversations().map((c) => c.id)).toEqual(expect.arrayContaining([fifth, sixth]));
    expect((await bob.sync()).errors).toEqual([]);
  });
});
