// Issue 13, finding 9: the group-state EAR key rotates with every commit that removes a member.
// Real clients against a test homeserver: the removed member's key stops opening the group's
// stored state, the others derive the new key from the commit (a member that was offline
// catches up by itself when the DS refuses its old key), and invitees get the current key.
import { AeadLabel, decryptAtRest, fromHex } from "@phoenix/crypto";
import Database from "better-sqlite3";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PhoenixClient, Transport } from "../src/index.js";
import { connectUsers, syncUntil, texts, World } from "./support/world.js";

describe("group EAR-key rotation on removals", () => {
  let world: World;
  let alice: PhoenixClient;
  let bob: PhoenixClient;
  let carol: PhoenixClient;
  let dave: PhoenixClient;
  let erin: PhoenixClient;
  /** Runs once right before Erin's next GroupOperation reaches the DS (a race staged by a test). */
  let beforeErinsCommit: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    world = await World.start();
    alice = await world.register("Alice");
    bob = await world.register("Bob");
    carol = await world.register("Carol");
    dave = await world.register("Dave");
    erin = await world.register("Erin", (transport: Transport) => ({
      ...transport,
      delivery: new Proxy(transport.delivery, {
        get(target, property, receiver) {
          if (property !== "groupOperation") return Reflect.get(target, property, receiver);
          return async (...args: Parameters<typeof target.groupOperation>) => {
            const hook = beforeErinsCommit;
            beforeErinsCommit = undefined;
            await hook?.();
            return target.groupOperation(...args);
          };
        },
      }),
    }));
    for (const other of [bob, carol, dave, erin]) await connectUsers(alice, other);
  });
  afterAll(async () => {
    await world?.stop();
  });

  /** The EAR key a client keeps for a conversation (read from its store, as a thief of the device would). */
  function earKeyOf(name: string, id: string): Uint8Array {
    const db = new Database(world.storePath(name), { readonly: true });
    try {
      const row = db.prepare("select ear_key from conversations where id = ?").get(id) as
        | { ear_key: Buffer }
        | undefined;
      if (row === undefined) throw new Error(`${name} has no conversation ${id}`);
      return new Uint8Array(row.ear_key);
    } finally {
      db.close();
    }
  }

  /** Whether `key` opens the group's state in a copy of the DS database. */
  async function opens(id: string, key: Uint8Array): Promise<boolean> {
    const uuid = fromHex(id.slice(0, 32));
    const client = new pg.Client({ connectionString: world.hs.databaseUrls.delivery });
    await client.connect();
    try {
      const res = await client.query<{ state: Buffer }>("select state from groups where group_id = $1", [
        Buffer.from(uuid),
      ]);
      const state = res.rows[0]?.state;
      if (state === undefined) throw new Error(`no stored group ${id}`);
      decryptAtRest(key, AeadLabel.GroupState, new Uint8Array(state), { aad: uuid });
      return true;
    } catch (error) {
      if ((error as Error).message.startsWith("no stored group")) throw error;
      return false;
    } finally {
      await client.end();
    }
  }

  /** A group of Alice (admin) and `others`, everyone synced. */
  async function group(title: string, others: PhoenixClient[]): Promise<string> {
    const id = await alice.createConversation(title);
    await alice.invite(
      id,
      others.map((o) => o.userId),
    );
    for (const o of others)
      await syncUntil(o, () => o.conversations().some((c) => c.id === id && c.title === title), "the group");
    return id;
  }

  it("after Carol's removal her key no longer opens the state; Alice and Bob go on and invite Dave", async () => {
    const id = await group("rotation", [bob, carol]);
    const carolKey = earKeyOf("Carol", id);
    expect(await opens(id, carolKey)).toBe(true);

    await alice.remove(id, [carol.userId]);
    expect(await opens(id, carolKey)).toBe(false);
    expect(await opens(id, earKeyOf("Alice", id))).toBe(true);
    await syncUntil(carol, () => carol.conversation(id).status === "inactive", "her removal");
    // Carol never learns the new key.
    expect(earKeyOf("Carol", id)).toEqual(carolKey);

    // Bob derives the new key from the commit.
    await syncUntil(bob, () => !bob.conversation(id).members.includes(carol.userId), "the removal");
    expect(earKeyOf("Bob", id)).toEqual(earKeyOf("Alice", id));
    await bob.sendMessage(id, "just the two of us");
    await syncUntil(alice, () => texts(alice, id).includes("just the two of us"), "Bob's message");
    await alice.sendMessage(id, "indeed");
    await syncUntil(bob, () => texts(bob, id).includes("indeed"), "Alice's message");

    // Dave, invited afterwards, gets the current key and takes part.
    await alice.invite(id, [dave.userId]);
    await syncUntil(dave, () => dave.conversations().some((c) => c.id === id), "the Welcome");
    expect(earKeyOf("Dave", id)).toEqual(earKeyOf("Alice", id));
    await dave.sendMessage(id, "hello from Dave");
    await syncUntil(bob, () => texts(bob, id).includes("hello from Dave"), "Dave's message");
    await syncUntil(alice, () => texts(alice, id).includes("hello from Dave"), "Dave's message");
    expect(await opens(id, carolKey)).toBe(false);
  });

  it("a member offline during a removal catches up by itself when it sends", async () => {
    const id = await group("offline-rotation", [bob, carol, dave]);
    const bobKey = earKeyOf("Bob", id);
    // Bob is offline: he processes nothing while Alice removes Carol.
    await alice.remove(id, [carol.userId]);
    expect(await opens(id, bobKey)).toBe(false);
    // His send is refused with his old key; the client catches up from its queue and retries.
    await bob.sendMessage(id, "back online");
    expect(earKeyOf("Bob", id)).toEqual(earKeyOf("Alice", id));
    expect(bob.conversation(id).members).not.toContain(carol.userId);
    await syncUntil(alice, () => texts(alice, id).includes("back online"), "Bob's message");
    await syncUntil(dave, () => texts(dave, id).includes("back online"), "Bob's message");
  });

  it("an invitee that comes online only after a removal rotated the key still joins and sends", async () => {
    const id = await group("invitee-after-rotation", [bob, carol]);
    await alice.invite(id, [dave.userId]);
    // Dave has not fetched his Welcome yet when Alice removes Carol.
    await alice.remove(id, [carol.userId]);
    await syncUntil(
      dave,
      () => dave.conversations().some((c) => c.id === id && c.status === "active"),
      "the Welcome",
    );
    // He joined from the WelcomeInfo sealed into his bundle, then derived the new key from the removal.
    expect(dave.conversation(id).members).not.toContain(carol.userId);
    expect(earKeyOf("Dave", id)).toEqual(earKeyOf("Alice", id));
    await dave.sendMessage(id, "Dave made it");
    await syncUntil(bob, () => texts(bob, id).includes("Dave made it"), "Dave's message");
  });

  it("a member whose commit of a leave loses to another member's commit catches up without an error", async () => {
    const id = await group("leave-race", [bob, carol, erin]);
    await carol.leave(id);
    // Erin has fetched Carol's self-remove proposal and commits it; just before her commit reaches
    // the DS, Bob commits the same proposal. His commit removes Carol, so the group's key rotates
    // and Erin's commit is refused for her (now old) key, not for its epoch. The commit that beat
    // hers is in her queue: like a commit refused as behind, that is no error of her sync.
    beforeErinsCommit = () =>
      syncUntil(bob, () => !bob.conversation(id).members.includes(carol.userId), "Carol's leave");
    await syncUntil(erin, () => beforeErinsCommit === undefined, "Carol's proposal");
    await syncUntil(erin, () => !erin.conversation(id).members.includes(carol.userId), "Bob's commit");
    expect(earKeyOf("Erin", id)).toEqual(earKeyOf("Bob", id));
    await syncUntil(carol, () => carol.conversation(id).status === "inactive", "her leave");
    await erin.sendMessage(id, "Erin after the race");
    await syncUntil(alice, () => texts(alice, id).includes("Erin after the race"), "Erin's message");
    expect(alice.conversation(id).members).not.toContain(carol.userId);
    expect(earKeyOf("Alice", id)).toEqual(earKeyOf("Erin", id));
  });
});
