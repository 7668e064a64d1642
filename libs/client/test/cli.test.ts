// The `phoenix` CLI's local commands: what they print and that they need no homeserver. (The
// networked commands run against a whole deployment in services/homeserver's e2e scenarios.)
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliIo, runCli } from "../src/cli/cli.js";
import { World } from "./support/world.js";

/** Nothing listens here: a command that tried the network would fail with "unreachable". */
const NO_SERVER = "http://127.0.0.1:9";

async function phoenix(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const io: CliIo = {
    out: (line) => {
      out += `${line}\n`;
    },
    err: (line) => {
      err += `${line}\n`;
    },
    interrupted: new Promise(() => undefined),
  };
  const code = await runCli(argv, io, { HOME: tmpdir() });
  return { code, out, err };
}

describe("the phoenix CLI without a homeserver", () => {
  let world: World;
  let dir: string;
  beforeAll(async () => {
    world = await World.start();
    dir = await mkdtemp(join(tmpdir(), "phoenix-cli-test-"));
  });
  afterAll(async () => {
    await world?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("whoami shows the user id, name and handles from the store alone", async () => {
    const ann = await world.register("Ann");
    await ann.createHandle("ann_cli_test");
    const { userId } = ann;
    await ann.close();
    const run = await phoenix("--server", NO_SERVER, "--store", world.storePath("Ann"), "whoami");
    expect(run.err).toBe("");
    expect(run.code).toBe(0);
    expect(run.out).toBe(`${userId} (Ann)\nhandle: ann_cli_test\n`);
  });

  it("whoami on a store without a user says how to register, exit code 1", async () => {
    const run = await phoenix("--server", NO_SERVER, "--store", join(dir, "empty.sqlite"), "whoami");
    expect(run.code).toBe(1);
    expect(run.err).toContain("phoenix register --name NAME --domain DOMAIN");
  });

  it("register refuses a store that already holds a user, before any call", async () => {
    const store = world.storePath("Ann");
    const run = await phoenix("--server", NO_SERVER, "--store", store, "register", "--name", "X");
    expect(run.code).toBe(2);
    expect(run.err).toContain(`${store} already holds a registered user`);
  });

  it("--help lists every command; a command's --help its options; a networked command reports the unreachable server", async () => {
    const help = await phoenix("--help");
    expect(help.code).toBe(0);
    for (const name of ["register", "whoami", "send", "messages", "watch"])
      expect(help.out).toMatch(new RegExp(`^ {2}${name}\\b`, "m"));
    const watch = await phoenix("watch", "--help");
    expect(watch.out).toContain("--count");
    const contacts = await phoenix("--server", NO_SERVER, "--store", world.storePath("Ann"), "contacts");
    expect(contacts.code).toBe(1);
    expect(contacts.err).toContain("phoenix contacts: the server is unreachable");
    expect(contacts.err).not.toMatch(/\n\s+at /);
  });
});
