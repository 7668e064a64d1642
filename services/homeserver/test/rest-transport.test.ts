// Two libs/client users talk to the all-in-one homeserver only through its edge gateway (the REST
// transport: binary protobuf over HTTP, listening over WebSocket): register, connect, messages
// both ways, a group with an invite, a live listener, and a refused call's error shape.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRestTransport, type Listener, PhoenixClient, type Transport } from "@phoenix/client";
import { GrpcCallError } from "@phoenix/runtime/grpc";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HomeserverProcess } from "./homeserver-process.js";

/** Waits until `check` holds, syncing when `client` is given (bounded: about 30 s). */
async function until(check: () => boolean, what: string, client?: PhoenixClient): Promise<void> {
  const errors: string[] = [];
  for (let i = 0; i < 300; i++) {
    if (client) errors.push(...(await client.sync()).errors);
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}; errors: ${errors.join("; ")}`);
}

function texts(client: PhoenixClient, conversationId: string): string[] {
  return client
    .messages(conversationId)
    .filter((m) => m.kind === "text")
    .map((m) => m.body);
}

describe("the REST/WebSocket transport against the homeserver's edge gateway", () => {
  let dir: string;
  let server: HomeserverProcess | undefined;
  let url = "";
  const transports: Transport[] = [];
  const clients: PhoenixClient[] = [];
  const listeners: Listener[] = [];
  const domain = "rest.test";

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "homeserver-rest-"));
    server = HomeserverProcess.spawn(
      ["--data-dir", join(dir, "data"), "--port", "0", "--domain", domain],
      {},
    );
    await server.ready();
    url = String(server.lines.find((l) => l.msg.startsWith("homeserver ready"))?.url);
  }, 120_000);
  afterAll(async () => {
    for (const l of listeners) await l.stop();
    for (const c of clients) await c.close().catch(() => undefined);
    for (const t of transports) t.close();
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  function transport(): Transport {
    const t = createRestTransport(url);
    transports.push(t);
    return t;
  }

  it("registers, connects, chats both ways, invites into a group and listens live", async () => {
    const register = async (name: string) => {
      const client = await PhoenixClient.register({
        transport: transport(),
        storePath: join(dir, `${name}.sqlite`),
        domain,
        displayName: name,
      });
      clients.push(client);
      return client;
    };
    const alice = await register("Alice");
    const bob = await register("Bob");
    const carol = await register("Carol");
    expect(bob.userId.endsWith(`@${domain}`)).toBe(true);

    // Bob listens over the WebSocket routes instead of polling.
    const bobListener = bob.listen();
    listeners.push(bobListener);

    await alice.connect(bob.userId);
    await until(() => bob.connectionRequests().some((r) => r.direction === "incoming"), "the request");
    const request = bob.connectionRequests().find((r) => r.direction === "incoming");
    await bob.acceptConnection(request?.id as number);
    await until(() => alice.contacts().some((c) => c.userId === bob.userId), "Bob as a contact", alice);
    const direct = alice.contacts()[0]?.conversationId as string;

    await alice.sendMessage(direct, "hello Bob");
    await until(() => texts(bob, direct).includes("hello Bob"), "Alice's message (live)");
    await bob.sendMessage(direct, "hi Alice");
    await until(() => texts(alice, direct).includes("hi Alice"), "Bob's reply", alice);

    // A group: Alice connects with Carol too and invites both.
    await alice.connect(carol.userId);
    await until(() => carol.connectionRequests().some((r) => r.direction === "incoming"), "request", carol);
    await carol.acceptConnection(carol.connectionRequests()[0]?.id as number);
    await until(() => alice.contacts().length === 2, "Carol as a contact", alice);
    const group = await alice.createConversation("Weekend");
    await alice.invite(group, [bob.userId, carol.userId]);
    await until(() => bob.conversations().some((c) => c.id === group), "Bob in the group");
    await until(() => carol.conversations().some((c) => c.id === group), "Carol in the group", carol);
    await carol.sendMessage(group, "count me in");
    await until(() => texts(bob, group).includes("count me in"), "Carol's group message (live)");
    await until(() => texts(alice, group).includes("count me in"), "Carol's group message", alice);
  }, 240_000);

  it("maps a refused call to the same GrpcCallError as the gRPC transport", async () => {
    const t = transport();
    const error = await t.auth.getConnectionPackages({ userId: undefined }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GrpcCallError);
    expect((error as GrpcCallError).code).not.toBe(0);
  });
});
