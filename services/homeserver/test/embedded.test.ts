// The homeserver as `npm start` runs it: PGlite under a temp data dir and the embedded bus.
import { mkdir, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HomeserverProcess } from "@phoenix/test-harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectServing, fetchAsCredentials, fetchQueueKeys } from "./support/scenario.js";

describe("all-in-one homeserver on PGlite and the embedded bus (child process)", () => {
  let dataDir: string;
  const processes: HomeserverProcess[] = [];
  const start = (args: string[], env: Record<string, string> = {}) => {
    const p = HomeserverProcess.start(args, env);
    processes.push(p);
    return p;
  };

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "homeserver-test-"));
  });
  afterAll(async () => {
    for (const p of processes) await p.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("serves AS, DS and QS through the edge gateway, stops on SIGTERM and keeps its keys across a restart", async () => {
    const domain = "alpha.test";
    const first = start(["--data-dir", dataDir, "--port", "0", "--domain", domain], { LOG_LEVEL: "debug" });
    const url = await first.ready();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const before = await expectServing(url, domain);

    first.signal("SIGTERM");
    expect(await first.exited).toEqual({ code: 0, signal: null });
    expect(first.lines.map((l) => l.msg)).toContain("shutdown complete");
    // Front door first, storage last.
    const closed = first.lines.filter((l) => l.msg === "closed").map((l) => l.resource);
    expect(closed.slice(0, 7)).toEqual([
      "edge gateway",
      "federation gateway",
      "delivery",
      "queue",
      "auth",
      "federation router",
      "bus",
    ]);
    expect(closed.slice(7, 12).sort()).toEqual(
      ["auth", "bus", "delivery", "federation", "queue"].map((name) => `${name} database`),
    );
    expect(closed.slice(12)).toEqual(["embedded database"]);
    // Data and generated keys live in the data directory: one PGlite database for every service.
    expect(await readdir(join(dataDir, "pglite"))).toEqual(["homeserver"]);
    expect((await stat(join(dataDir, "queue/storage.key"))).mode & 0o077).toBe(0);
    expect((await stat(join(dataDir, "auth/key-encryption.key"))).mode & 0o077).toBe(0);
    // The gateway's and the DS's secrets too (the five-service deployment requires them as variables).
    expect((await stat(join(dataDir, "federation/key-encryption.key"))).mode & 0o077).toBe(0);
    expect((await stat(join(dataDir, "delivery/replay-marker.key"))).mode & 0o077).toBe(0);
    // The key sealing the embedded bus's stored messages.
    expect((await stat(join(dataDir, "bus/payload.key"))).mode & 0o077).toBe(0);

    const second = start(["--data-dir", dataDir, "--port", "0", "--domain", domain]);
    const url2 = await second.ready();
    expect(await fetchAsCredentials(url2)).toEqual(before.asCredentials);
    expect(await fetchQueueKeys(url2)).toEqual(before.queueKeys);
    expect((await second.stop()).code).toBe(0);
  }, 240_000);

  it("refuses a data directory of an earlier version (one PGlite directory per service), naming what to do", async () => {
    const legacyDir = await mkdtemp(join(tmpdir(), "homeserver-legacy-"));
    try {
      await mkdir(join(legacyDir, "pglite", "auth"), { recursive: true });
      const legacy = start(["--data-dir", legacyDir, "--port", "0"]);
      expect((await legacy.exited).code).toBe(1);
      const fatal = legacy.lines.find((l) => l.level === "fatal");
      expect(JSON.stringify(fatal)).toContain("earlier version");
      expect(JSON.stringify(fatal)).toContain("--data-dir");
      // Nothing was created beside the old databases.
      expect(await readdir(join(legacyDir, "pglite"))).toEqual(["auth"]);
    } finally {
      await rm(legacyDir, { recursive: true, force: true });
    }
  }, 60_000);

  it("prints its usage for --help and refuses unknown flags and bad settings with a reason", async () => {
    const help = start(["--help"]);
    expect((await help.exited).code).toBe(0);
    expect(help.output).toContain("--data-dir");
    expect(help.output).toContain("DATABASE_URL");

    const unknown = start(["--bogus"]);
    expect((await unknown.exited).code).toBe(2);
    expect(unknown.output).toContain("--bogus");

    const bad = start(["--data-dir", dataDir, "--domain", "Not A Domain"]);
    expect((await bad.exited).code).toBe(1);
    const fatal = bad.lines.find((l) => l.level === "fatal");
    expect(fatal?.msg).toContain("HOMESERVER_DOMAIN");
  }, 60_000);
});
