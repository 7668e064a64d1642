// The all-in-one homeserver on a public host without an ingress: --tls-cert/--tls-key make its
// REST/WebSocket listener HTTPS (TLS 1.3 only), and the real client — the `phoenix` CLI on the
// REST transport — registers over it, trusting the test CA through NODE_EXTRA_CA_CERTS.
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeTestTls, type TestTlsFiles } from "@phoenix/runtime/testing";
import { HomeserverProcess, REPO_ROOT } from "@phoenix/test-harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// The certificate names localhost; the CLI resolves it to 127.0.0.1 first (ipv4first), where the
// homeserver listens.
const NAME = "localhost";
const DOMAIN = "tls.test";
const CLI = join(REPO_ROOT, "libs/client/src/cli/main.ts");

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

function phoenix(env: Record<string, string>, args: string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--conditions=source", "--import", "tsx", CLI, ...args],
      {
        cwd: REPO_ROOT,
        timeout: 60_000,
        env: { PATH: process.env.PATH ?? "", NODE_OPTIONS: "--dns-result-order=ipv4first", ...env },
      },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

describe("all-in-one homeserver with TLS on its client edge", () => {
  let dir: string;
  let tls: TestTlsFiles;
  const processes: HomeserverProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "homeserver-tls-"));
    tls = makeTestTls([NAME]);
  });
  afterAll(async () => {
    for (const p of processes) await p.stop();
    tls?.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("serves HTTPS from --tls-cert/--tls-key and the client library registers over it with the given CA", async () => {
    const server = HomeserverProcess.start([
      "--data-dir",
      join(dir, "data"),
      "--port",
      "0",
      "--domain",
      DOMAIN,
      "--tls-cert",
      tls.certFile(NAME),
      "--tls-key",
      tls.keyFile(NAME),
    ]);
    processes.push(server);
    const url = await server.ready();
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const base = `https://${NAME}:${new URL(url).port}`;
    const cli = (store: string, env: Record<string, string>, ...args: string[]) =>
      phoenix({ HOME: dir, ...env }, ["--server", base, "--store", join(dir, store), ...args]);

    // Without the CA the certificate is not trusted: nothing is registered.
    const untrusted = await cli("untrusted.sqlite", {}, "register", "--name", "Eve", "--domain", DOMAIN);
    expect(untrusted.code).not.toBe(0);
    expect(untrusted.stderr).toContain("UNABLE_TO_VERIFY_LEAF_SIGNATURE");

    const trusted = { NODE_EXTRA_CA_CERTS: tls.caFile };
    const registered = await cli("ann.sqlite", trusted, "register", "--name", "Ann", "--domain", DOMAIN);
    expect(registered.stderr).toBe("");
    expect(registered.code).toBe(0);
    expect(registered.stdout).toMatch(/^registered \S+@tls\.test \(Ann\)/);
    const handle = await cli("ann.sqlite", trusted, "handle", "ann_tls");
    expect(handle.stderr).toBe("");
    expect(handle.stdout).toContain("is yours");
  }, 240_000);

  it("refuses a domain that is not fully qualified, naming the variable", async () => {
    const server = HomeserverProcess.start([
      "--data-dir",
      join(dir, "bad"),
      "--port",
      "0",
      "--domain",
      "chat",
    ]);
    processes.push(server);
    expect((await server.exited).code).not.toBe(0);
    expect(JSON.stringify(server.lines)).toContain(
      'HOMESERVER_DOMAIN: \\"chat\\" is not a fully qualified domain name',
    );
  }, 60_000);
});
