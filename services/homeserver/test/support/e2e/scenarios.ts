// The end-to-end scenarios of the product, written once and run against each deployment: real
// PhoenixClients (and the phoenix CLI) reach the homeserver only through its edge gateway.
// Scenarios of one file share a deployment and build on each other's users, in order.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConversationInactiveError, type PhoenixClient, UnknownUserError } from "@phoenix/client";
import { EventuallyTimeoutError } from "@phoenix/runtime/testing";
import {
  connectUsers,
  type Deployment,
  type DeploymentKind,
  deploymentStores,
  describeHits,
  eventually,
  type MemoryScanResult,
  membersOf,
  needlesFromClientDirs,
  scanSeizableStores,
  scanServiceMemory,
  startDeployment,
  summarizeSnapshotScan,
  syncUntil,
  systemTextsOf,
  takeMemoryBaseline,
  textsOf,
  WAIT_MS,
} from "@phoenix/test-harness";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { busStoreMessages } from "./bus-stores.js";
import { World } from "./world.js";

/** Defines the whole scenario suite against a fresh deployment of `kind`. */
export function defineScenarios(kind: DeploymentKind): void {
  describe(`e2e through the edge gateway: ${kind}`, () => {
    const domain = `${kind}.e2e.test`;
    let deployment: Deployment | undefined;
    let world: World;
    // Users shared by the scenarios, registered by the first client scenario.
    let alice: PhoenixClient;
    let bob: PhoenixClient;
    let carol: PhoenixClient;
    /** Alice's and Bob's connection conversation. */
    let direct: string;

    /** Memory of the observed services right after start (active-observer baseline). */
    let baselineDir: string | undefined;
    let memoryBaseline: Map<string, string[]> | undefined;

    beforeAll(async () => {
      deployment = await startDeployment({ kind, domain });
      world = await World.create(deployment);
      if (kind === "services") {
        baselineDir = await mkdtemp(join(tmpdir(), "phoenix-memory-baseline-"));
        memoryBaseline = await takeMemoryBaseline(deployment, baselineDir);
      }
    }, 240_000);
    afterAll(async () => {
      await world?.close();
      await deployment?.stop();
      if (baselineDir) await rm(baselineDir, { recursive: true, force: true });
    }, 60_000);

    // The active observer (docs/security.md): the working memory of the DS, QS and federation
    // gateway processes is read while the scenarios run — after the first group scenario and
    // after the CLI scenario, before the restart clears it — and checked in the last test.
    const memoryReads: { after: string; result: MemoryScanResult }[] = [];
    const MEMORY_READ_AFTER = [
      "creates a group and invites two users: all members see who added whom",
      "the phoenix CLI: two users register, connect by handle, chat, and watch a message arrive",
    ];
    afterEach(async (context) => {
      if (kind !== "services" || deployment === undefined) return;
      if (!MEMORY_READ_AFTER.includes(context.task.name)) return;
      const needles = await needlesFromClientDirs([world.dir]);
      memoryReads.push({
        after: context.task.name,
        result: await scanServiceMemory(deployment, needles, { baseline: memoryBaseline }),
      });
    }, 120_000);

    it("answers /healthz and /readyz with every upstream serving", async () => {
      const url = deployment?.url as string;
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      const ready = await fetch(`${url}/readyz`);
      expect(ready.status).toBe(200);
      expect(((await ready.json()) as { upstreams: unknown }).upstreams).toEqual({
        auth: "SERVING",
        delivery: "SERVING",
        queue: "SERVING",
      });
    });

    it("answers an unknown route with 404 and a google.rpc.Status body", async () => {
      const response = await fetch(`${deployment?.url}/v1/no/such/route`);
      expect(response.status).toBe(404);
      expect(response.headers.get("content-type")).toMatch(/^application\/json/);
      const body = (await response.json()) as { code: number; message: string; details?: unknown[] };
      expect(body.code).toBe(5); // NOT_FOUND
      expect(body.message).toContain("/v1/no/such/route");
      if (body.details !== undefined) expect(Array.isArray(body.details)).toBe(true);
    });

    it("registers users on the deployment's domain", async () => {
      alice = await world.register("Alice");
      bob = await world.register("Bob");
      carol = await world.register("Carol");
      for (const c of [alice, bob, carol]) expect(c.userId).toMatch(new RegExp(`^[0-9a-f-]{36}@${domain}$`));
      expect(new Set([alice.userId, bob.userId, carol.userId]).size).toBe(3);
      expect(alice.contacts()).toEqual([]);
    });

    it("connects two users: the responder accepts, both see the contact and a connection conversation", async () => {
      await alice.connect(bob.userId);
      await syncUntil(bob, () => bob.connectionRequests().length === 1, "Alice's request");
      const request = bob.connectionRequests()[0];
      expect(request).toMatchObject({ direction: "incoming", userId: alice.userId, status: "pending" });
      direct = await bob.acceptConnection(request?.id as number);
      await syncUntil(alice, () => alice.contacts().length === 1, "Bob as a contact");

      expect(alice.contacts()).toEqual([{ userId: bob.userId, displayName: "Bob", conversationId: direct }]);
      expect(bob.contacts()).toEqual([
        { userId: alice.userId, displayName: "Alice", conversationId: direct },
      ]);
      for (const [me, other] of [
        [alice, bob],
        [bob, alice],
      ] as const) {
        expect(me.conversation(direct)).toMatchObject({
          kind: "connection",
          title: other.displayName,
          status: "active",
        });
        expect(membersOf(me, direct)).toEqual([alice.userId, bob.userId].sort());
      }
      expect(alice.connectionRequests()).toEqual([
        expect.objectContaining({ direction: "outgoing", userId: bob.userId, status: "accepted" }),
      ]);
    });

    it("delivers messages both ways with unread counts and mark-as-read", async () => {
      await alice.sendMessage(direct, "hello Bob");
      await syncUntil(bob, () => textsOf(bob, direct).includes("hello Bob"), "Alice's message");
      expect(bob.messages(direct).find((m) => m.body === "hello Bob")?.sender).toBe(alice.userId);
      expect(bob.conversation(direct).unread).toBe(1);
      bob.markRead(direct);
      expect(bob.conversation(direct).unread).toBe(0);

      // Alice has read everything so far (Bob joining the connection group is an event of it).
      alice.markRead(direct);
      await bob.sendMessage(direct, "hi Alice");
      await bob.sendMessage(direct, "how are you?");
      await syncUntil(alice, () => textsOf(alice, direct).includes("how are you?"), "Bob's replies");
      expect(textsOf(alice, direct)).toEqual(["hello Bob", "hi Alice", "how are you?"]);
      expect(alice.conversation(direct).unread).toBe(2);
      alice.markRead(direct);
      expect(alice.conversation(direct).unread).toBe(0);
      // Own messages never count as unread.
      expect(bob.conversation(direct).unread).toBe(0);
    });

    it("delivers 10 messages to a live listener (WebSocket): 10 retrieved, in order", async () => {
      const errors: Error[] = [];
      const listener = bob.listen({ onError: (e) => errors.push(e) });
      try {
        const before = textsOf(bob, direct).length;
        for (let i = 0; i < 10; i++) await alice.sendMessage(direct, `message ${i}`);
        await eventually(() => textsOf(bob, direct).length >= before + 10, {
          timeoutMs: WAIT_MS,
          message: "ten live messages",
        });
        expect(textsOf(bob, direct).slice(before)).toEqual(
          Array.from({ length: 10 }, (_, i) => `message ${i}`),
        );
        expect(bob.conversation(direct).unread).toBe(10);
      } finally {
        await listener.stop();
      }
      expect(errors).toEqual([]);
      bob.markRead(direct);
    });

    it("exchanges display names: a new name reaches the contact", async () => {
      await bob.setDisplayName("Robert");
      expect(bob.displayName).toBe("Robert");
      await alice.refreshContactProfiles();
      expect(alice.contacts()).toEqual([
        expect.objectContaining({ userId: bob.userId, displayName: "Robert" }),
      ]);
      await alice.setDisplayName("Alice A.");
      await bob.refreshContactProfiles();
      expect(bob.contacts()).toEqual([
        expect.objectContaining({ userId: alice.userId, displayName: "Alice A." }),
      ]);
    });

    it("creates a group and invites two users: all members see who added whom", async () => {
      await connectUsers(alice, carol);
      const group = await alice.createConversation("Book club");
      expect(alice.conversation(group)).toMatchObject({
        kind: "group",
        title: "Book club",
        members: [alice.userId],
      });
      await alice.invite(group, [bob.userId, carol.userId]);
      const everyone = [alice.userId, bob.userId, carol.userId].sort();
      for (const c of [bob, carol]) {
        await syncUntil(
          c,
          () => c.conversations().some((x) => x.id === group) && c.conversation(group).title === "Book club",
          "the Welcome",
        );
      }
      for (const c of [alice, bob, carol]) {
        expect(membersOf(c, group)).toEqual(everyone);
        expect(c.conversation(group)).toMatchObject({ kind: "group", status: "active" });
      }
      // By name, one event for the commit that added both; Bob and Carol are not contacts: each
      // read the other's name with the profile key Alice handed the group with its title.
      expect(systemTextsOf(alice, group)).toContain("you added Robert and Carol");
      expect(systemTextsOf(bob, group)).toContain("Alice A. added you and Carol");
      expect(systemTextsOf(carol, group)).toContain("Alice A. added you and Robert");

      await carol.sendMessage(group, "chapter 3 tonight?");
      for (const c of [alice, bob])
        await syncUntil(c, () => textsOf(c, group).includes("chapter 3 tonight?"), "Carol's message");
      expect(bob.messages(group).find((m) => m.kind === "text")?.sender).toBe(carol.userId);
    });

    it("a member's self-update keeps the membership the same and messages flowing", async () => {
      const group = await groupOf("Updates", [bob, carol]);
      const before = membersOf(alice, group);
      await bob.updateKeys(group);
      await carol.sendMessage(group, "after Bob's update");
      for (const c of [alice, bob])
        await syncUntil(c, () => textsOf(c, group).includes("after Bob's update"), "Carol's message");
      for (const c of [alice, bob, carol]) expect(membersOf(c, group)).toEqual(before);
      await bob.sendMessage(group, "still here");
      await syncUntil(alice, () => textsOf(alice, group).includes("still here"), "Bob's message");
    });

    it("removes a user: the removed side sees the conversation inactive, the others see them gone", async () => {
      const group = await groupOf("Removal", [bob, carol]);
      await alice.remove(group, [carol.userId]);
      await syncUntil(carol, () => carol.conversation(group).status === "inactive", "the removal");
      await syncUntil(bob, () => !bob.conversation(group).members.includes(carol.userId), "Carol gone");
      expect(systemTextsOf(bob, group)).toContain("Alice A. removed Carol");
      await expect(carol.sendMessage(group, "still here?")).rejects.toBeInstanceOf(ConversationInactiveError);
      await bob.sendMessage(group, "just us two");
      await syncUntil(alice, () => textsOf(alice, group).includes("just us two"), "Bob's message");
    });

    it("removes and re-adds a user 10 times, then messages flow both ways", async () => {
      const group = await alice.createConversation("Revolving door");
      for (let round = 0; round < 10; round++) {
        await alice.invite(group, [bob.userId]);
        await syncUntil(
          bob,
          () => bob.conversations().some((c) => c.id === group && c.status === "active"),
          `Welcome ${round}`,
        );
        await alice.remove(group, [bob.userId]);
        await syncUntil(bob, () => bob.conversation(group).status === "inactive", `removal ${round}`);
      }
      await alice.invite(group, [bob.userId]);
      await syncUntil(bob, () => bob.conversation(group).status === "active", "the last Welcome");
      await alice.sendMessage(group, "welcome back");
      await syncUntil(bob, () => textsOf(bob, group).includes("welcome back"), "Alice's message");
      await bob.sendMessage(group, "glad to be back");
      await syncUntil(alice, () => textsOf(alice, group).includes("glad to be back"), "Bob's message");
      expect(membersOf(alice, group)).toEqual([alice.userId, bob.userId].sort());
      expect(membersOf(bob, group)).toEqual([alice.userId, bob.userId].sort());
    }, 180_000);

    it("a member leaves: the self-remove is committed by another member", async () => {
      const group = await groupOf("Leaving", [bob, carol]);
      await bob.leave(group);
      // Alice's next sync commits Bob's proposal.
      await syncUntil(
        alice,
        () => !alice.conversation(group).members.includes(bob.userId),
        "Bob's leave committed",
      );
      await syncUntil(bob, () => bob.conversation(group).status === "inactive", "Bob's removal");
      await syncUntil(carol, () => !carol.conversation(group).members.includes(bob.userId), "Bob gone");
      expect(systemTextsOf(alice, group)).toContain("Robert left");
      expect(systemTextsOf(carol, group)).toContain("Robert left");
      expect(systemTextsOf(bob, group)).toContain("you left");
      await carol.sendMessage(group, "bye Bob");
      await syncUntil(alice, () => textsOf(alice, group).includes("bye Bob"), "Carol's message");
    });

    it("deletes a group: every member sees it inactive", async () => {
      const group = await groupOf("Doomed", [bob, carol]);
      await alice.deleteConversation(group);
      expect(alice.conversation(group).status).toBe("inactive");
      for (const c of [bob, carol])
        await syncUntil(c, () => c.conversation(group).status === "inactive", "the deletion");
      await expect(bob.sendMessage(group, "hello?")).rejects.toBeInstanceOf(ConversationInactiveError);
    });

    it("a full cycle: create, invite, chat, self-update, remove, re-add, leave, delete", async () => {
      const dave = await world.register("Dave");
      await connectUsers(dave, alice);
      await connectUsers(dave, bob);
      const group = await dave.createConversation("Cycle");
      await dave.invite(group, [alice.userId, bob.userId]);
      for (const c of [alice, bob])
        await syncUntil(c, () => c.conversations().some((x) => x.id === group), "the Welcome");
      await alice.sendMessage(group, "hi all");
      for (const c of [dave, bob])
        await syncUntil(c, () => textsOf(c, group).includes("hi all"), "Alice's message");
      await alice.updateKeys(group);
      await dave.remove(group, [bob.userId]);
      await syncUntil(bob, () => bob.conversation(group).status === "inactive", "Bob's removal");
      await dave.invite(group, [bob.userId]);
      await syncUntil(bob, () => bob.conversation(group).status === "active", "Bob's re-add");
      await bob.sendMessage(group, "back");
      for (const c of [dave, alice])
        await syncUntil(c, () => textsOf(c, group).includes("back"), "Bob's message");
      await alice.leave(group);
      await syncUntil(
        dave,
        () => !dave.conversation(group).members.includes(alice.userId),
        "Alice's leave committed",
      );
      await syncUntil(alice, () => alice.conversation(group).status === "inactive", "Alice out");
      await syncUntil(bob, () => !bob.conversation(group).members.includes(alice.userId), "Alice gone");
      expect(membersOf(bob, group)).toEqual([bob.userId, dave.userId].sort());
      await dave.deleteConversation(group);
      await syncUntil(bob, () => bob.conversation(group).status === "inactive", "the deletion");
    }, 120_000);

    it("a client restarted from its store keeps its state and keeps working", async () => {
      const before = {
        userId: bob.userId,
        contacts: bob.contacts(),
        conversations: bob.conversations(),
        messages: bob.messages(direct),
      };
      await bob.close();
      // Messages arrive while Bob's app is closed.
      await alice.sendMessage(direct, "while you were away");
      bob = await world.reopen("Bob");
      expect(bob.userId).toBe(before.userId);
      expect(bob.displayName).toBe("Robert");
      expect(bob.contacts()).toEqual(before.contacts);
      expect(bob.conversations()).toEqual(before.conversations);
      expect(bob.messages(direct)).toEqual(before.messages);

      await syncUntil(bob, () => textsOf(bob, direct).includes("while you were away"), "the offline message");
      expect(textsOf(bob, direct).filter((t) => t === "hello Bob")).toHaveLength(1); // nothing twice
      await bob.sendMessage(direct, "back online");
      await syncUntil(
        alice,
        () => textsOf(alice, direct).includes("back online"),
        "Bob's message after the restart",
      );
    });

    it("connecting to a user that does not exist fails with UnknownUserError", async () => {
      const ghost = `00000000-0000-4000-8000-000000000000@${domain}`;
      const error = await carol.connect(ghost).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnknownUserError);
      expect((error as Error).message).toContain("no user");
      await expect(carol.connectByHandle("nobody_here")).rejects.toBeInstanceOf(UnknownUserError);
      expect(
        carol.connectionRequests().filter((r) => r.direction === "outgoing" && r.userId === ghost),
      ).toEqual([]);
    });

    it("the phoenix CLI: two users register, connect by handle, chat, and watch a message arrive", async () => {
      const ok = async (user: string, ...args: string[]): Promise<string> => {
        const run = await world.phoenix(user, ...args);
        expect(run.stderr, `phoenix ${args.join(" ")}`).toBe("");
        expect(run.code).toBe(0);
        return run.stdout;
      };
      /** Repeats a read command until its output contains `text` (bounded: 15 tries). */
      const until = async (user: string, text: string, ...args: string[]): Promise<string> => {
        let last = "";
        for (let i = 0; i < 15; i++) {
          last = await ok(user, ...args);
          if (last.includes(text)) return last;
        }
        throw new Error(`phoenix ${args.join(" ")} never showed "${text}"; last output:\n${last}`);
      };

      const [registeredAnn] = await Promise.all([
        ok("ann", "register", "--name", "Ann", "--domain", domain),
        ok("ben", "register", "--name", "Ben", "--domain", domain),
      ]);
      expect(registeredAnn).toMatch(
        new RegExp(`^registered \\S+@${domain.replaceAll(".", "\\.")} \\(Ann\\)`),
      );
      expect(await ok("ben", "handle", `ben_${kind.replace("-", "_")}`)).toContain("is yours");
      expect(await ok("ann", "connect", `ben_${kind.replace("-", "_")}`)).toContain(
        "connection request sent",
      );
      const requests = await until("ben", "pending", "requests");
      // The request carries Ann's profile: her name, then her user id.
      const id = /#(\d+)\s+from Ann \(\S+@\S+\)\s+pending/.exec(requests)?.[1] as string;
      expect(id, requests).toBeDefined();
      expect(await ok("ben", "accept", id)).toContain("accepted");
      await until("ann", "Ben", "contacts");
      const annId = /^registered (\S+)/.exec(registeredAnn)?.[1] as string;
      const members = await ok("ben", "members", "Ann");
      expect(members.trim().split("\n")).toHaveLength(2);
      expect(members).toContain(`${annId}  Ann`);
      expect(members).toMatch(/ {2}me$/m);

      // Ben watches; Ann's message appears in his terminal; Ctrl-C stops the watch.
      const watch = world.spawnPhoenix("ben", "watch");
      try {
        await eventually(() => watch.stdout.includes("watching as"), {
          timeoutMs: WAIT_MS,
          message: "the watch to start",
        });
        expect(await ok("ann", "send", "Ben", "hello from the terminal")).toContain("sent");
        await eventually(() => watch.stdout.includes("Ann: hello from the terminal"), {
          timeoutMs: WAIT_MS,
          message: "the watched message",
        });
        watch.interrupt();
        expect(await watch.exited).toBe(0);
        expect(watch.stderr).toBe("");
      } finally {
        watch.kill();
      }

      await ok("ben", "send", "Ann", "hi Ann");
      const thread = await until("ann", "Ben: hi Ann", "messages", "Ben");
      expect(thread.indexOf("me: hello from the terminal")).toBeGreaterThanOrEqual(0);
      expect(thread.indexOf("me: hello from the terminal")).toBeLessThan(thread.indexOf("Ben: hi Ann"));

      // Readable failures with exit codes, never a stack trace.
      const [unknown, fresh, bad] = await Promise.all([
        world.phoenix("ann", "send", "Nobody", "hi"),
        world.phoenix("cat", "contacts"),
        world.phoenix("ann", "frobnicate"),
      ]);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain('no conversation "Nobody"');
      expect(fresh.code).toBe(1);
      expect(fresh.stderr).toContain("phoenix register");
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('unknown command "frobnicate"');
      for (const run of [unknown, fresh, bad]) expect(run.stderr).not.toMatch(/\n\s+at /);
    }, 240_000);

    it("handled messages have left the bus: its store holds none of the scenarios' traffic", async () => {
      // Every scenario above waited until the clients had their messages, so every fan-out (and
      // queue-deleted event) was handled; a copy of the bus store must not yield them.
      let stored: Record<string, number> = {};
      await eventually(
        async () => {
          stored = await busStoreMessages(deployment as Deployment);
          return Object.values(stored).every((n) => n === 0);
        },
        { timeoutMs: 30_000, intervalMs: 500, message: "the bus stores to empty" },
      ).catch((error: unknown) => {
        // On a timeout the assertion below names the streams that still hold messages.
        if (!(error instanceof EventuallyTimeoutError)) throw error;
      });
      expect(stored, "messages per stream").toEqual(
        Object.fromEntries(Object.keys(stored).map((stream) => [stream, 0])),
      );
      if (kind === "services") expect(Object.keys(stored)).toHaveLength(3);
    }, 60_000);

    it("delivers a message accepted before the deployment restarts", async () => {
      await alice.sendMessage(direct, "across the restart");
      await deployment?.restart();
      // Same URL: the clients' transports reconnect by themselves.
      await syncUntil(bob, () => textsOf(bob, direct).includes("across the restart"), "the message");
      await bob.sendMessage(direct, "got it");
      await syncUntil(alice, () => textsOf(alice, direct).includes("got it"), "Bob's reply");
    }, 240_000);

    it("a snapshot of every store holds no identifier of the scenarios in the clear", async () => {
      // The needles come from the clients' own stores: ids, handles, names, titles, texts,
      // members, queue ids, credentials, leaf credentials.
      const needles = await needlesFromClientDirs([world.dir]);
      const result = await scanSeizableStores(deploymentStores(deployment as Deployment), needles);
      const { scan, unpadded } = result;
      const r = scan.report;
      console.info(summarizeSnapshotScan(kind, result, needles));
      expect(needles.needles.length).toBeGreaterThan(50);
      // Self-check: what the AS and QS must hold is found where they keep it, so the scan did
      // read those stores (a scan that reads nothing would find no hit either).
      for (const place of ["auth user-id", "auth client-id", "queue queue-id"])
        expect(r.allowedByPlace[place] ?? 0, place).toBeGreaterThan(0);
      expect(r.hits, describeHits(r.hits)).toEqual([]);
      for (const ds of unpadded) expect(ds.unpadded, `${ds.database}: group state sizes`).toEqual([]);
    }, 180_000);

    it.runIf(kind === "services")(
      "an active observer reading DS, QS and federation gateway memory finds no identity",
      () => {
        expect(memoryReads.map((m) => m.after)).toEqual(MEMORY_READ_AFTER);
        for (const { after, result } of memoryReads) {
          const r = result.scan.report;
          console.info(
            `memory scan after "${after.slice(0, 40)}…": ${result.reads
              .map((m) => `${m.name} pid ${m.pid}: ${m.bytes} bytes in ${m.regions} regions`)
              .join(", ")}; ${r.needles} needles (${result.scan.needles.skipped.length} skipped), ` +
              `${r.patterns} patterns, ${r.bytes} bytes scanned, ${r.allowed} allowed matches, ` +
              `${r.inBaseline} matches of ${r.baselineNeedles.length} patterns already in the baseline ` +
              `(${r.baselineNeedles.join("; ")}), ${r.hits.length} hits`,
          );
          for (const m of result.reads) expect(m.bytes, m.name).toBeGreaterThan(10 * 1024 * 1024);
          expect(r.hits, describeHits(r.hits)).toEqual([]);
        }
      },
    );

    /** A fresh group of Alice's with `invitees` joined (all contacts of hers). */
    async function groupOf(title: string, invitees: PhoenixClient[]): Promise<string> {
      const group = await alice.createConversation(title);
      await alice.invite(
        group,
        invitees.map((c) => c.userId),
      );
      for (const c of invitees)
        await syncUntil(
          c,
          () => c.conversations().some((x) => x.id === group && x.status === "active"),
          "the Welcome",
        );
      return group;
    }
  });
}
