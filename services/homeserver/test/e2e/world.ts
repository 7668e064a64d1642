// Real clients of one deployment, all through its edge gateway (the REST/WebSocket transport),
// and the bounded waits the scenarios use.
import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRestTransport, PhoenixClient, type Transport } from "@phoenix/client";
import { type Deployment, REPO_ROOT } from "@phoenix/test-harness";

/** How long one wait of a scenario may take before it fails. */
export const WAIT_MS = 30_000;

/** The clients (and CLI users) of one deployment; `close()` releases them all. */
export class World {
  private readonly transports: Transport[] = [];
  private readonly clients: PhoenixClient[] = [];

  private constructor(
    readonly deployment: Deployment,
    readonly dir: string,
  ) {}

  static async create(deployment: Deployment): Promise<World> {
    return new World(deployment, await mkdtemp(join(tmpdir(), `phoenix-e2e-${deployment.kind}-`)));
  }

  transport(): Transport {
    const t = createRestTransport(this.deployment.url);
    this.transports.push(t);
    return t;
  }

  storePath(name: string): string {
    return join(this.dir, `${name}.sqlite`);
  }

  async register(name: string): Promise<PhoenixClient> {
    const client = await PhoenixClient.register({
      transport: this.transport(),
      storePath: this.storePath(name),
      domain: this.deployment.domain,
      displayName: name,
    });
    this.clients.push(client);
    return client;
  }

  /** A new PhoenixClient (and transport) on the store file of `name`, as after an app restart. */
  async reopen(name: string): Promise<PhoenixClient> {
    const client = await PhoenixClient.open({ transport: this.transport(), storePath: this.storePath(name) });
    this.clients.push(client);
    return client;
  }

  async close(): Promise<void> {
    for (const c of this.clients) await c.close().catch(() => undefined);
    for (const t of this.transports) t.close();
    await rm(this.dir, { recursive: true, force: true });
  }

  /** Runs the `phoenix` CLI as user `user` (its own store file) and waits for it (bounded). */
  phoenix(user: string, ...args: string[]): Promise<CliRun> {
    return new Promise((done) => {
      execFile(process.execPath, this.cliArgs(user, args), cliOptions(this.dir), (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        done({ code, stdout, stderr });
      });
    });
  }

  /** Starts a long-running CLI command (`watch`) of `user`; stop it with `interrupt()`. */
  spawnPhoenix(user: string, ...args: string[]): CliSession {
    const child = spawn(process.execPath, this.cliArgs(user, args), {
      ...cliOptions(this.dir),
      stdio: ["ignore", "pipe", "pipe"],
    });
    const session: CliSession = {
      stdout: "",
      stderr: "",
      exited: new Promise((resolve) => child.once("exit", (code) => resolve(code ?? 1))),
      interrupt: () => {
        if (child.exitCode === null) child.kill("SIGINT");
      },
      kill: () => {
        if (child.exitCode === null) child.kill("SIGKILL");
      },
    };
    child.stdout.on("data", (chunk: Buffer) => {
      session.stdout += chunk.toString("utf8");
    });
    child.stderr.on("data", (chunk: Buffer) => {
      session.stderr += chunk.toString("utf8");
    });
    return session;
  }

  private cliArgs(user: string, args: readonly string[]): string[] {
    return [
      "--conditions=source",
      "--import",
      "tsx",
      CLI,
      "--server",
      this.deployment.url,
      "--store",
      join(this.dir, `cli-${user}.sqlite`),
      ...args,
    ];
  }
}

const CLI = join(REPO_ROOT, "libs/client/src/cli/main.ts");

function cliOptions(home: string) {
  return { cwd: REPO_ROOT, timeout: 60_000, env: { PATH: process.env.PATH ?? "", HOME: home } };
}

/** A finished CLI command. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** A running CLI command. */
export interface CliSession {
  stdout: string;
  stderr: string;
  /** The exit code. */
  exited: Promise<number>;
  /** Ctrl-C. */
  interrupt(): void;
  kill(): void;
}

/**
 * Syncs `client` until `check` holds (bounded by {@link WAIT_MS}). A queue message the client
 * cannot process is a bug, not something to wait out: it fails at once.
 */
export async function syncUntil(client: PhoenixClient, check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const result = await client.sync();
    if (result.errors.length > 0)
      throw new Error(
        `${client.displayName}: sync failed while waiting for ${what}: ${result.errors.join("; ")}`,
      );
    if (check()) return;
    if (Date.now() > deadline) throw new Error(`${client.displayName}: timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Waits (bounded by {@link WAIT_MS}) until `check` holds, without syncing: live listeners, CLI output. */
export async function eventually(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Connects `a` to `b` (b accepts) and waits until both see the contact; returns the conversation. */
export async function connectUsers(a: PhoenixClient, b: PhoenixClient): Promise<string> {
  await a.connect(b.userId);
  const pending = () =>
    b
      .connectionRequests()
      .find((r) => r.direction === "incoming" && r.userId === a.userId && r.status === "pending");
  await syncUntil(b, () => pending() !== undefined, `${a.displayName}'s request`);
  const conversation = await b.acceptConnection(pending()?.id as number);
  await syncUntil(a, () => a.contacts().some((c) => c.userId === b.userId), `${b.displayName} as a contact`);
  return conversation;
}

/** Text bodies of a conversation, oldest first. */
export function texts(client: PhoenixClient, conversationId: string): string[] {
  return client
    .messages(conversationId)
    .filter((m) => m.kind === "text")
    .map((m) => m.body);
}

/** Bodies of a conversation's system events ("X added Y", …). */
export function events(client: PhoenixClient, conversationId: string): string[] {
  return client
    .messages(conversationId)
    .filter((m) => m.kind === "system")
    .map((m) => m.body);
}

/** Sorted member ids of a conversation. */
export function members(client: PhoenixClient, conversationId: string): string[] {
  return [...client.conversation(conversationId).members].sort();
}
