// Runs every example of examples/ as a child process — exactly the command examples/README.md
// gives — against a real all-in-one homeserver on a free loopback port, and checks what a
// developer would see: the echo bot answers a second client's messages (also ones sent while it
// was offline, as the same user), the raw SDK prints the server's real AS key, the REST calls
// return the documented JSON.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { join } from "node:path";
import type { PhoenixClient } from "@phoenix/client";
import { AsCredential, toHex } from "@phoenix/crypto";
import {
  type Deployment,
  eventually,
  REPO_ROOT,
  startDeployment,
  syncUntil,
  TestClients,
  textsOf,
} from "@phoenix/test-harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/** How long one example may run before it is killed (a run takes a few seconds). */
const RUN_TIMEOUT_MS = 90_000;

/** `node --conditions=source --import tsx <entry>`: the workspace packages from their sources. */
function exampleArgs(entry: string, args: readonly string[]): string[] {
  return ["--conditions=source", "--import", "tsx", join(REPO_ROOT, "examples", entry), ...args];
}

function exampleEnv(extra: Record<string, string>): Record<string, string> {
  return { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...extra };
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a one-shot example to its end (bounded). */
function runExample(entry: string, args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      exampleArgs(entry, args),
      { cwd: REPO_ROOT, env: exampleEnv(env), timeout: RUN_TIMEOUT_MS },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A long-running example (the echo bot) with its output so far. */
class Session {
  stdout = "";
  stderr = "";
  readonly exited: Promise<number>;
  private readonly child: ChildProcess;

  constructor(entry: string, env: Record<string, string>) {
    this.child = spawn(process.execPath, exampleArgs(entry, []), {
      cwd: REPO_ROOT,
      env: exampleEnv(env),
      stdio: ["ignore", "pipe", "pipe"],
      timeout: RUN_TIMEOUT_MS * 2,
    });
    this.exited = new Promise((resolve) => this.child.once("exit", (code) => resolve(code ?? 1)));
    this.child.stdout?.on("data", (chunk: Buffer) => {
      this.stdout += chunk.toString("utf8");
    });
    this.child.stderr?.on("data", (chunk: Buffer) => {
      this.stderr += chunk.toString("utf8");
    });
  }

  /** Waits (bounded) until stdout matches `pattern`; returns the match. */
  async line(pattern: RegExp, what: string): Promise<RegExpMatchArray> {
    return eventually(
      () => {
        if (this.child.exitCode !== null && !pattern.test(this.stdout))
          throw new Error(`the example exited before ${what}:\n${this.stdout}\n${this.stderr}`);
        return this.stdout.match(pattern);
      },
      { timeoutMs: RUN_TIMEOUT_MS, intervalMs: 100, message: `${what} (stdout so far: ${this.stdout})` },
    );
  }

  /** The exit code, waiting at most the run bound. */
  async exit(): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the example did not exit:\n${this.stdout}`)),
        RUN_TIMEOUT_MS,
      );
    });
    try {
      return await Promise.race([this.exited, bound]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ctrl-C. */
  interrupt(): void {
    if (this.child.exitCode === null) this.child.kill("SIGINT");
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill("SIGKILL");
  }
}

describe("examples against the all-in-one homeserver", () => {
  let deployment: Deployment;
  let clients: TestClients;
  /** The AS root verifying keys, as the test reads them from the gateway itself. */
  let rootKeys: string[];

  beforeAll(async () => {
    deployment = await startDeployment({ kind: "all-in-one", domain: "examples.test" });
    clients = await TestClients.create("phoenix-examples-");
    const res = await fetch(`${deployment.url}/v1/as/credentials`);
    const body = (await res.json()) as { asCredentials: string[] };
    rootKeys = body.asCredentials.map((b64) =>
      toHex(AsCredential.decode(new Uint8Array(Buffer.from(b64, "base64"))).verifyingKey.bytes),
    );
    expect(rootKeys.length).toBeGreaterThan(0);
  }, 240_000);

  afterAll(async () => {
    await clients?.close();
    await deployment?.stop();
  });

  it("raw-sdk: gets the AS's real key over gRPC and makes signed calls", async () => {
    // The AS's gRPC address, as the homeserver's ready line names it.
    const ready = deployment.processes[0]?.lines.find((l) => l.msg.startsWith("homeserver ready"));
    const services = ready?.services as { auth?: string } | undefined;
    expect(services?.auth).toMatch(/^127\.0\.0\.1:\d+$/);

    const run = await runExample("raw-sdk/raw-sdk.ts", ["--as", String(services?.auth)]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("domain: examples.test");
    const printed = [
      ...run.stdout.matchAll(/as root credential \w+\n {2}verifying key: ([0-9a-f]{64})/g),
    ].map((m) => m[1]);
    expect(printed).toEqual(rootKeys);
    expect(run.stdout).toMatch(/as intermediate credential [0-9a-f]{64} \(signed by root/);
    expect(run.stdout).toMatch(/created handle raw-sdk-[0-9a-f]{8} \(expires \d{4}-/);
    expect(run.stdout).toContain("handle exists: true");
    expect(run.stdout).toContain("wrong key refused: UNAUTHENTICATED");
    expect(run.stdout).toContain("reason ERROR_REASON_BAD_SIGNATURE");
    expect(run.stdout).toMatch(/deleted handle raw-sdk-[0-9a-f]{8}; handle exists: false/);
  });

  it("raw-sdk: without an address it says what it needs", async () => {
    const run = await runExample("raw-sdk/raw-sdk.ts", []);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--as HOST:PORT");
  });

  it("rest-fetch: public and signed REST calls with plain fetch", async () => {
    const run = await runExample("rest-fetch/rest-fetch.ts", [], { PHOENIX_SERVER: deployment.url });
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/openapi: "Phoenix homeserver client API", \d+ paths/);
    expect(run.stdout).toMatch(
      /GET \/v1\/as\/credentials -> 200 \{"domain":"examples\.test","asCredentials":\["/,
    );
    expect(run.stdout).toContain(`as root verifying key: ${rootKeys[0]}`);
    expect(run.stdout).toMatch(/POST \/v1\/as\/handles -> 200 \{"expiresAt":"\d{4}-[^"]+Z"\}/);
    expect(run.stdout).toContain('POST /v1/as/handles/check -> 200 {"exists":true}');
    expect(run.stdout).toContain('POST /v1/as/handles -> 409 {"code":6,"message":"the handle is taken"');
    expect(run.stdout).toContain("POST /v1/as/handles/delete -> 200 {}");
    expect(run.stdout).toMatch(/deleted handle rest-[0-9a-f]{8}; handle exists: false/);
  });

  it("echo-bot: answers a contact's messages, also those sent while it was stopped", async () => {
    const store = join(clients.dir, "echo-bot.sqlite");
    const botEnv = (maxReplies?: number) => ({
      PHOENIX_SERVER: deployment.url,
      ECHO_BOT_STORE: store,
      ECHO_BOT_HANDLE: "echo",
      ...(maxReplies === undefined ? {} : { ECHO_BOT_MAX_REPLIES: String(maxReplies) }),
    });
    const first = new Session("echo-bot/echo-bot.ts", botEnv(2));
    let second: Session | undefined;
    try {
      const [, botId] = await first.line(/echo-bot: listening as (\S+@examples\.test)/, "the bot to listen");
      expect(first.stdout).toContain(`registered ${botId}`);
      expect(first.stdout).toContain("claimed handle echo");

      // A second user finds the bot by its handle; the bot accepts on its own.
      const alice: PhoenixClient = await clients.register(deployment.url, deployment.domain, "Alice");
      await alice.connectByHandle("echo");
      await syncUntil(alice, () => alice.contacts().some((c) => c.userId === botId), "the bot as a contact");
      const chat = alice.contacts().find((c) => c.userId === botId)?.conversationId as string;

      const replies = () =>
        alice
          .messages(chat)
          .filter((m) => m.kind === "text" && m.sender === botId)
          .map((m) => m.body);
      await alice.sendMessage(chat, "hello bot");
      await syncUntil(alice, () => replies().includes("echo: hello bot"), "the first echo");
      await alice.sendMessage(chat, "second one");
      await syncUntil(alice, () => replies().includes("echo: second one"), "the second echo");
      // After its two replies the bot stops by itself.
      expect(await first.exit()).toBe(0);
      expect(first.stdout).toContain("stopped after 2 replies");

      // Written while the bot is down; the restarted bot (no reply limit this time) is the same
      // user, answers it once, and stops on Ctrl-C.
      await alice.sendMessage(chat, "are you there?");
      second = new Session("echo-bot/echo-bot.ts", botEnv());
      await second.line(/echo-bot: listening as/, "the restarted bot to listen");
      expect(second.stdout).toContain(`opened ${botId}`);
      expect(second.stdout).not.toContain("claimed handle");
      await syncUntil(alice, () => replies().includes("echo: are you there?"), "the echo after the restart");
      second.interrupt();
      expect(await second.exit()).toBe(0);
      expect(second.stdout).toContain("stopped after 1 replies");
      expect(replies()).toEqual(["echo: hello bot", "echo: second one", "echo: are you there?"]);
      expect(textsOf(alice, chat)).toHaveLength(6);
      // No pass of the bot failed (a stream re-opened under load is allowed: it says "reconnecting").
      expect(first.stderr + second.stderr).not.toMatch(/^echo-bot: (?!reconnecting)/m);
    } finally {
      first.kill();
      second?.kill();
    }
  }, 300_000);
});
