import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { connectUsers, syncUntil, texts, World } from "./support/world.js";

// Every Ed25519 and HPKE operation in this process — client, DS and QS alike, since the test
// homeserver runs in-process — is counted by replacing @phoenix/crypto's primitive modules.
const counts = vi.hoisted(() => ({ sign: 0, verify: 0, seal: 0, open: 0 }));

vi.mock("../../crypto/src/ed25519.ts", async (importOriginal) => {
  const real = await importOriginal<typeof import("../../crypto/src/ed25519.js")>();
  return {
    ...real,
    ed25519Sign: (...args: Parameters<typeof real.ed25519Sign>) => {
      counts.sign++;
      return real.ed25519Sign(...args);
    },
    ed25519Verify: (...args: Parameters<typeof real.ed25519Verify>) => {
      counts.verify++;
      return real.ed25519Verify(...args);
    },
  };
});
vi.mock("../../crypto/src/hpke.ts", async (importOriginal) => {
  const real = await importOriginal<typeof import("../../crypto/src/hpke.js")>();
  const count =
    <A extends unknown[], R>(key: "seal" | "open", f: (...args: A) => R) =>
    (...args: A): R => {
      counts[key]++;
      return f(...args);
    };
  return {
    ...real,
    setupBaseS: count("seal", real.setupBaseS),
    setupBaseR: count("open", real.setupBaseR),
    hpkeSealBase: count("seal", real.hpkeSealBase),
    hpkeOpenBase: count("open", real.hpkeOpenBase),
    hpkeSeal: count("seal", real.hpkeSeal),
    hpkeOpen: count("open", real.hpkeOpen),
    hpkeSendExport: count("seal", real.hpkeSendExport),
    hpkeReceiveExport: count("open", real.hpkeReceiveExport),
  };
});

function take(): string {
  const row = `${counts.sign} sign, ${counts.verify} verify, ${counts.seal} seal, ${counts.open} open`;
  counts.sign = counts.verify = counts.seal = counts.open = 0;
  return row;
}

describe("public-key operations of one application message, end to end", () => {
  let world: World;
  beforeAll(async () => {
    world = await World.start();
  });
  afterAll(async () => {
    await world?.stop();
  });

  it("counts the sender's SendMessage (with the DS) and the recipient's sync (with the QS)", async () => {
    const alice = await world.register("Alice");
    const bob = await world.register("Bob");
    await connectUsers(alice, bob);
    const group = await alice.createConversation("Two");
    await alice.invite(group, [bob.userId]);
    await syncUntil(bob, () => bob.conversations().some((c) => c.id === group), "the Welcome");
    await alice.sendMessage(group, "warm-up");
    await syncUntil(bob, () => texts(bob, group).includes("warm-up"), "the warm-up");
    // A sync that finds nothing new: what polling costs (request signatures, server verifies).
    take();
    await bob.sync();
    const emptySync = take();
    await alice.sendMessage(group, "one");
    const send = take();
    // Sync until the message is there; the sync that brings it is the one counted.
    let receive = "";
    for (let attempt = 0; attempt < 300 && !texts(bob, group).includes("one"); attempt++) {
      take();
      await bob.sync();
      receive = take();
      if (!texts(bob, group).includes("one")) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(texts(bob, group)).toContain("one");
    if (process.env.ASYMMETRIC_OPS_VERBOSE) console.log({ emptySync, send, receive });
    // send: the MLS content signature and the DS request signature; the DS verifies the latter.
    // A sync polls two queues (2 request signatures, 2 server verifies); bringing the message
    // adds its one MLS verify. The QS opens no sealed queue config (cached since the warm-up).
    expect({ emptySync, send, receive }).toEqual({
      emptySync: "2 sign, 2 verify, 0 seal, 0 open",
      send: "2 sign, 1 verify, 0 seal, 0 open",
      receive: "2 sign, 3 verify, 0 seal, 0 open",
    });
  });
});
