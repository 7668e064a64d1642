import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Homeserver, startHomeserver, syncUntil as syncUntilHolds } from "@phoenix/test-harness";
import { createGrpcTransport, PhoenixClient, type Transport } from "../../src/index.js";

/** A homeserver plus the clients a test made; `stop()` closes them all. */
export class World {
  private readonly transports: Transport[] = [];
  private readonly clients: PhoenixClient[] = [];
  readonly dir = mkdtempSync(join(tmpdir(), "phoenix-client-"));

  private constructor(readonly hs: Homeserver) {}

  static async start(): Promise<World> {
    return new World(await startHomeserver({ domain: "alpha.example" }));
  }

  transport(): Transport {
    const t = createGrpcTransport(this.hs.addresses);
    this.transports.push(t);
    return t;
  }

  storePath(name: string): string {
    return join(this.dir, `${name}.sqlite`);
  }

  /** Registers a user; `wrap` may interpose on its transport (to stage a race). */
  async register(name: string, wrap?: (transport: Transport) => Transport): Promise<PhoenixClient> {
    const transport = this.transport();
    const c = await PhoenixClient.register({
      transport: wrap === undefined ? transport : wrap(transport),
      storePath: this.storePath(name),
      domain: this.hs.domain,
      displayName: name,
    });
    this.clients.push(c);
    return c;
  }

  async reopen(name: string): Promise<PhoenixClient> {
    const c = await PhoenixClient.open({ transport: this.transport(), storePath: this.storePath(name) });
    this.clients.push(c);
    return c;
  }

  async stop(): Promise<void> {
    for (const c of this.clients) await c.close().catch(() => undefined);
    for (const t of this.transports) t.close();
    await this.hs.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Syncs `client` until `check` holds (bounded: about 15 s); a message it cannot process fails at once. */
export function syncUntil(client: PhoenixClient, check: () => boolean, what: string): Promise<void> {
  return syncUntilHolds(client, check, what, 15_000);
}

/** Connects `a` to `b` (b accepts) and waits until both see the contact. */
export async function connectUsers(a: PhoenixClient, b: PhoenixClient): Promise<void> {
  await a.connect(b.userId);
  await syncUntil(
    b,
    () =>
      b
        .connectionRequests()
        .some((r) => r.direction === "incoming" && r.userId === a.userId && r.status === "pending"),
    "the request",
  );
  const req = b
    .connectionRequests()
    .find((r) => r.direction === "incoming" && r.userId === a.userId && r.status === "pending");
  if (req === undefined) throw new Error("no request");
  await b.acceptConnection(req.id);
  await syncUntil(a, () => a.contacts().some((c) => c.userId === b.userId), "the contact");
}

/** Text bodies of a conversation. */
export function texts(client: PhoenixClient, conversationId: string): string[] {
  return client
    .messages(conversationId)
    .filter((m) => m.kind === "text")
    .map((m) => m.body);
}
