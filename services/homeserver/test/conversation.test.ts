// Two real clients (libs/client over gRPC to the addresses of the ready line) chat through the
// all-in-one homeserver on PGlite: the DS's fan-outs reach the QS through the embedded bus, and a
// message accepted before a restart is delivered after it.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGrpcTransport, PhoenixClient, type Transport } from "@phoenix/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HomeserverProcess } from "./homeserver-process.js";

interface Addresses {
  auth: string;
  delivery: string;
  queue: string;
}

/** Syncs until `check` holds (bounded: about 30 s). */
async function syncUntil(client: PhoenixClient, check: () => boolean, what: string): Promise<void> {
  const errors: string[] = [];
  for (let i = 0; i < 300; i++) {
    errors.push(...(await client.sync()).errors);
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${client.displayName}: timed out waiting for ${what}; errors: ${errors.join("; ")}`);
}

function texts(client: PhoenixClient, conversationId: string): string[] {
  return client
    .messages(conversationId)
    .filter((m) => m.kind === "text")
    .map((m) => m.body);
}

describe("a conversation through the all-in-one homeserver", () => {
  let dir: string;
  const processes: HomeserverProcess[] = [];
  const transports: Transport[] = [];
  const clients: PhoenixClient[] = [];
  const domain = "chat.test";

  async function startHomeserver(): Promise<Addresses> {
    const p = HomeserverProcess.spawn(
      ["--data-dir", join(dir, "data"), "--port", "0", "--domain", domain],
      {},
    );
    processes.push(p);
    await p.ready();
    const line = p.lines.find((l) => l.msg.startsWith("homeserver ready"));
    return line?.services as Addresses;
  }
  function transport(addresses: Addresses): Transport {
    const t = createGrpcTransport(addresses);
    transports.push(t);
    return t;
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "homeserver-chat-"));
  });
  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    for (const t of transports) t.close();
    for (const p of processes) await p.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("connects two users, delivers messages both ways, and delivers after a restart", async () => {
    const first = await startHomeserver();
    const register = async (name: string) => {
      const client = await PhoenixClient.register({
        transport: transport(first),
        storePath: join(dir, `${name}.sqlite`),
        domain,
        displayName: name,
      });
      clients.push(client);
      return client;
    };
    const alice = await register("Alice");
    const bob = await register("Bob");
    expect(alice.userId.endsWith(`@${domain}`)).toBe(true);

    await alice.connect(bob.userId);
    await syncUntil(
      bob,
      () => bob.connectionRequests().some((r) => r.direction === "incoming"),
      "the request",
    );
    const request = bob.connectionRequests().find((r) => r.direction === "incoming");
    await bob.acceptConnection(request?.id as number);
    await syncUntil(alice, () => alice.contacts().some((c) => c.userId === bob.userId), "Bob as a contact");
    const conversation = alice.contacts()[0]?.conversationId as string;

    await alice.sendMessage(conversation, "hello Bob");
    await syncUntil(bob, () => texts(bob, conversation).includes("hello Bob"), "Alice's message");
    await bob.sendMessage(conversation, "hi Alice");
    await syncUntil(alice, () => texts(alice, conversation).includes("hi Alice"), "Bob's reply");

    // Accepted, then the homeserver stops before Bob fetches it.
    await alice.sendMessage(conversation, "still there?");
    processes[0]?.signal("SIGTERM");
    expect((await processes[0]?.exited)?.code).toBe(0);
    for (const c of clients.splice(0)) await c.close();

    const second = await startHomeserver();
    const bobAgain = await PhoenixClient.open({
      transport: transport(second),
      storePath: join(dir, "Bob.sqlite"),
    });
    clients.push(bobAgain);
    await syncUntil(bobAgain, () => texts(bobAgain, conversation).includes("still there?"), "the message");
    expect(texts(bobAgain, conversation)).toEqual(["hello Bob", "hi Alice", "still there?"]);
  }, 240_000);
});
