// Real PhoenixClients for tests against a homeserver's edge gateway (the REST/WebSocket
// transport), and the bounded waits and views the scenarios use.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRestTransport, PhoenixClient, type Transport } from "@phoenix/client";
import { eventually } from "@phoenix/runtime/testing";

/** How long one wait may take by default before it fails. */
export const WAIT_MS = 30_000;

/**
 * The PhoenixClients (and transports) a test made, their SQLite stores in one temp directory;
 * `close()` closes them all and removes the directory.
 */
export class TestClients {
  private readonly transports: Transport[] = [];
  private readonly clients: PhoenixClient[] = [];

  private constructor(readonly dir: string) {}

  /** A fresh temp directory (named with `prefix`) for the stores. */
  static async create(prefix = "phoenix-clients-"): Promise<TestClients> {
    return new TestClients(await mkdtemp(join(tmpdir(), prefix)));
  }

  /** A REST transport to the edge gateway at `url` (closed by `close()`). */
  transport(url: string): Transport {
    const transport = createRestTransport(url);
    this.transports.push(transport);
    return transport;
  }

  /** The SQLite store file named `store`. */
  storePath(store: string): string {
    return join(this.dir, `${store}.sqlite`);
  }

  /** Registers user `name` on `domain` through the edge gateway at `url`, in store `store`. */
  async register(url: string, domain: string, name: string, store = name): Promise<PhoenixClient> {
    return this.keep(
      await PhoenixClient.register({
        transport: this.transport(url),
        storePath: this.storePath(store),
        domain,
        displayName: name,
      }),
    );
  }

  /** A new PhoenixClient (and transport) on store `store`, as after an app restart. */
  async reopen(url: string, store: string): Promise<PhoenixClient> {
    return this.keep(
      await PhoenixClient.open({ transport: this.transport(url), storePath: this.storePath(store) }),
    );
  }

  async close(): Promise<void> {
    for (const client of this.clients.splice(0)) await client.close().catch(() => undefined);
    for (const transport of this.transports.splice(0)) transport.close();
    await rm(this.dir, { recursive: true, force: true });
  }

  private keep(client: PhoenixClient): PhoenixClient {
    this.clients.push(client);
    return client;
  }
}

/**
 * Syncs `client` until `check` holds, at most `timeoutMs`. A message the client could not
 * process is a bug, not something to wait out: it fails at once.
 */
export async function syncUntil(
  client: PhoenixClient,
  check: () => boolean,
  what: string,
  timeoutMs = WAIT_MS,
): Promise<void> {
  await eventually(
    async () => {
      const result = await client.sync();
      if (result.errors.length > 0) {
        throw new Error(
          `${client.displayName} could not process a message while waiting for ${what}: ${result.errors.join("; ")}`,
        );
      }
      return check();
    },
    { timeoutMs, intervalMs: 100, message: `${client.displayName} to see ${what}` },
  );
}

/**
 * Connects `from` to `to` (any domains) as users do: `from` asks, `to` accepts the pending
 * request, both end up with each other as a contact. Returns the connection conversation's id.
 */
export async function connectUsers(from: PhoenixClient, to: PhoenixClient): Promise<string> {
  await from.connect(to.userId);
  const pending = () =>
    to
      .connectionRequests()
      .find((r) => r.direction === "incoming" && r.userId === from.userId && r.status === "pending");
  await syncUntil(to, () => pending() !== undefined, `the request of ${from.displayName}`);
  const conversationId = await to.acceptConnection(pending()?.id as number);
  await syncUntil(
    from,
    () => from.contacts().some((c) => c.userId === to.userId),
    `${to.displayName} as a contact`,
  );
  return conversationId;
}

/** The bodies of the text messages of a conversation, in arrival order. */
export function textsOf(client: PhoenixClient, conversationId: string): string[] {
  return client
    .messages(conversationId)
    .filter((m) => m.kind === "text")
    .map((m) => m.body);
}

/** The bodies of a conversation's system events ("X added Y", …), in arrival order. */
export function systemTextsOf(client: PhoenixClient, conversationId: string): string[] {
  return client
    .messages(conversationId)
    .filter((m) => m.kind === "system")
    .map((m) => m.body);
}

/** The sorted member ids of a conversation as `client` sees it. */
export function membersOf(client: PhoenixClient, conversationId: string): string[] {
  return [...client.conversation(conversationId).members].sort();
}
