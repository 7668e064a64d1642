// Two `phoenix` CLI users (each command a spawned process, as a person would run it) chat through
// the all-in-one homeserver child process: register, handle, connect, accept, messages both ways,
// a group with an invite, and readable failures with non-zero exit codes.
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HomeserverProcess } from "./homeserver-process.js";

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), "../../../libs/client/src/cli/main.ts");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe("the phoenix CLI against a homeserver process", () => {
  let dir: string;
  let server: HomeserverProcess | undefined;
  let url = "";
  const domain = "cli.test";

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "homeserver-cli-"));
    server = HomeserverProcess.spawn(
      ["--data-dir", join(dir, "data"), "--port", "0", "--domain", domain],
      {},
    );
    await server.ready();
    url = String(server.lines.find((l) => l.msg.startsWith("homeserver ready"))?.url);
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  function phoenix(user: string, ...args: string[]): Promise<Run> {
    return new Promise((done) => {
      execFile(
        process.execPath,
        [
          "--conditions=source",
          "--import",
          "tsx",
          CLI,
          "--server",
          url,
          "--store",
          join(dir, `${user}.sqlite`),
          ...args,
        ],
        { timeout: 60_000, env: { PATH: process.env.PATH ?? "", HOME: dir } },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
          done({ code, stdout, stderr });
        },
      );
    });
  }
  async function ok(user: string, ...args: string[]): Promise<string> {
    const r = await phoenix(user, ...args);
    expect(r.stderr, `phoenix ${args.join(" ")}`).toBe("");
    expect(r.code).toBe(0);
    return r.stdout;
  }
  /** Repeats a read command until its output contains `text` (bounded: 20 tries). */
  async function eventually(user: string, text: string, ...args: string[]): Promise<string> {
    let last = "";
    for (let i = 0; i < 20; i++) {
      last = await ok(user, ...args);
      if (last.includes(text)) return last;
    }
    throw new Error(`phoenix ${args.join(" ")} never showed "${text}"; last output:\n${last}`);
  }

  it("lets two users connect and chat, in a group too", async () => {
    expect(await ok("alice", "register", "--name", "Alice", "--domain", domain)).toMatch(
      new RegExp(`^registered \\S+@${domain.replace(".", "\\.")} \\(Alice\\)`),
    );
    await ok("bob", "register", "--name", "Bob", "--domain", domain);
    expect(await ok("bob", "handle", "bob")).toContain("handle bob is yours");

    expect(await ok("alice", "connect", "bob")).toContain("connection request sent");
    const requests = await eventually("bob", "pending", "requests");
    const id = /#(\d+)\s+from/.exec(requests)?.[1] as string;
    expect(await ok("bob", "accept", id)).toContain("accepted");
    await eventually("alice", "Bob", "contacts");

    expect(await ok("alice", "send", "Bob", "hello", "Bob")).toContain("sent");
    expect(await eventually("bob", "Alice: hello Bob", "messages", "Alice")).toMatch(/\] Alice: hello Bob/);
    await ok("bob", "send", "Alice", "hi Alice");
    const thread = await eventually("alice", "Bob: hi Alice", "messages", "Bob");
    expect(thread.indexOf("me: hello Bob")).toBeGreaterThanOrEqual(0);
    expect(thread.indexOf("me: hello Bob")).toBeLessThan(thread.indexOf("Bob: hi Alice"));

    expect(await ok("alice", "create", "Book club")).toMatch(/^created \S+/);
    expect(await ok("alice", "invite", "Book club", "Bob")).toContain("invited");
    await eventually("bob", "Book club", "conversations");
    await ok("bob", "send", "Book club", "chapter 3 tonight?");
    expect(await eventually("alice", "Bob: chapter 3 tonight?", "messages", "Book club")).toContain(
      "Bob: chapter 3 tonight?",
    );
    expect(await ok("bob", "leave", "Book club")).toContain("left Book club");
  }, 300_000);

  it("fails readably, with exit codes", async () => {
    const unknown = await phoenix("alice", "send", "Nobody", "hi");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no conversation "Nobody"');
    expect(unknown.stderr).not.toMatch(/\n\s+at /);

    const fresh = await phoenix("carol", "contacts");
    expect(fresh.code).toBe(1);
    expect(fresh.stderr).toContain("phoenix register");

    const down = await phoenix("alice", "--server", "http://127.0.0.1:1", "contacts");
    expect(down.code).toBe(1);
    expect(down.stderr).toContain("unreachable");

    const bad = await phoenix("alice", "frobnicate");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unknown command "frobnicate"');
  }, 120_000);
});
