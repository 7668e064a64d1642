// Two domains on two "hosts": each all-in-one homeserver in its own network namespace, the two
// namespaces linked directly by a veth pair, each resolving the other's domain by name through
// its own hosts file (/etc/netns/<ns>/hosts), federation over TLS with a throw-away CA. The users
// are `phoenix` CLI runs inside the namespaces against their own homeserver's edge gateway on
// the namespace's 127.0.0.1. Root only: skipped elsewhere, with the reason in the suite name.
//
// Network safety (see src/netns.ts): a blackhole route for 10.231.0.0/16 is added to the root
// namespace first; this process never opens a connection to a 10.231.x address; every process
// that does runs inside a namespace. This file is the only user of 10.231.0.0/16, so the same
// addresses serve every run; namespace names are unique per run.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eventually, makeTestTls, type TestTlsFiles } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_LIMITS_ENV } from "../src/deployment.js";
import {
  createLinkedNamespaces,
  hostsDirExists,
  inNamespace,
  type LinkedNamespaces,
  type Namespace,
  namespaceExists,
  netnsUnavailableReason,
  runInNamespace,
} from "../src/netns.js";
import { HomeserverProcess, REPO_ROOT } from "../src/service-process.js";

const ALPHA = "alpha.test";
const BETA = "beta.test";
const FEDERATION_PORT = "8443";
const EDGE = "http://127.0.0.1:8080";
const TSX = [process.execPath, "--conditions=source", "--import", "tsx"];

const unavailable = netnsUnavailableReason();

/** Runs `phoenix` inside `ns` with the store `store`; throws unless it exits 0. */
async function phoenix(ns: Namespace, store: string, ...args: string[]): Promise<string> {
  const r = await runInNamespace(
    ns,
    [...TSX, "libs/client/src/cli/main.ts", "--server", EDGE, "--store", store, ...args],
    {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" },
      timeoutMs: 90_000,
    },
  );
  if (r.code !== 0)
    throw new Error(`phoenix ${args.join(" ")} in ${ns.name} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Repeats a `phoenix` command (each run fetches what is waiting) until its output matches. */
async function phoenixUntil(
  ns: Namespace,
  store: string,
  args: string[],
  pattern: RegExp,
  what: string,
): Promise<RegExpMatchArray> {
  let out = "";
  return eventually(
    async () => {
      out = await phoenix(ns, store, ...args);
      return out.match(pattern);
    },
    { timeoutMs: 90_000, intervalMs: 500, message: () => `${what}; last output:\n${out}` },
  );
}

describe.skipIf(unavailable !== undefined)(
  `two domains in network namespaces${unavailable ? ` (skipped: ${unavailable})` : ""}`,
  () => {
    let nets: LinkedNamespaces | undefined;
    let tls: TestTlsFiles | undefined;
    const servers: HomeserverProcess[] = [];
    const dir = mkdtempSync(join(tmpdir(), "phoenix-netns-"));

    beforeAll(async () => {
      tls = makeTestTls([ALPHA, BETA]);
      nets = createLinkedNamespaces();
      const sides = [
        { domain: ALPHA, ns: nets.a, peer: BETA, peerNs: nets.b },
        { domain: BETA, ns: nets.b, peer: ALPHA, peerNs: nets.a },
      ];
      for (const side of sides) {
        // The peer's domain resolves to its veth address only through this namespace's hosts file.
        nets.writeHosts(side.ns, { [side.peer]: side.peerNs.address });
        const files = tls;
        const server = HomeserverProcess.start(
          ["--domain", side.domain, "--data-dir", join(dir, side.domain)],
          {
            // Embedded PGlite and bus: the root namespace's Postgres and NATS are out of reach.
            ...TEST_LIMITS_ENV,
            LOG_LEVEL: "info",
            FEDERATION_HOST: side.ns.address,
            FEDERATION_PORT,
            FEDERATION_PEERS: `${side.peer}=${side.peer}:${FEDERATION_PORT}`,
            FEDERATION_STATIC_ONLY: "true",
            FEDERATION_ALLOWED_DOMAINS: side.peer,
            FEDERATION_TLS_CERT_FILE: files.certFile(side.domain),
            FEDERATION_TLS_KEY_FILE: files.keyFile(side.domain),
            FEDERATION_TLS_CA_FILE: files.caFile,
            FEDERATION_RETRY_INITIAL: "100ms",
            FEDERATION_RETRY_MAX: "1s",
          },
          { name: `${side.domain} homeserver`, commandPrefix: inNamespace(side.ns) },
        );
        servers.push(server);
      }
      await Promise.all(servers.map((s) => s.ready(240_000)));
    }, 300_000);

    afterAll(async () => {
      await Promise.all(servers.map((s) => s.stop()));
      const names = nets ? [nets.a.name, nets.b.name] : [];
      nets?.remove();
      tls?.remove();
      rmSync(dir, { recursive: true, force: true });
      for (const name of names)
        if (namespaceExists(name) || hostsDirExists(name))
          throw new Error(`namespace ${name} was not torn down`);
    }, 60_000);

    it("users on alpha and beta connect by user id, message both ways and share a group", async () => {
      if (nets === undefined) throw new Error("no namespaces");
      const { a, b } = nets;
      const aliceStore = join(dir, "alice.sqlite");
      const bobStore = join(dir, "bob.sqlite");
      const alice = (await phoenix(a, aliceStore, "register", "--domain", ALPHA, "--name", "Alice")).match(
        /registered (\S+@alpha\.test)/,
      )?.[1];
      const bob = (await phoenix(b, bobStore, "register", "--domain", BETA, "--name", "Bob")).match(
        /registered (\S+@beta\.test)/,
      )?.[1];
      if (alice === undefined || bob === undefined) throw new Error("registration printed no user id");

      // Connect across domains: alpha's AS fetches bob's connection package from beta.
      expect(await phoenix(a, aliceStore, "connect", bob)).toContain(`connection request sent to ${bob}`);
      const request = await phoenixUntil(
        b,
        bobStore,
        ["requests"],
        new RegExp(`#(\\d+)\\s+from Alice \\(${alice}\\)\\s+pending`),
        "alice's request at bob",
      );
      expect(await phoenix(b, bobStore, "accept", request[1] ?? "")).toMatch(/^accepted; conversation/);
      await phoenixUntil(a, aliceStore, ["contacts"], new RegExp(bob), "bob in alice's contacts");

      // Messages both ways in the connection conversation.
      await phoenix(a, aliceStore, "send", bob, "hello from alpha");
      await phoenixUntil(b, bobStore, ["messages", alice], /hello from alpha/, "alice's message at bob");
      await phoenix(b, bobStore, "send", alice, "hello from beta");
      await phoenixUntil(a, aliceStore, ["messages", bob], /hello from beta/, "bob's message at alice");

      // A group on alpha with a member of beta.
      const group = (await phoenix(a, aliceStore, "create", "Across")).match(/created (\S+)/)?.[1];
      if (group === undefined) throw new Error("create printed no conversation id");
      await phoenix(a, aliceStore, "invite", group, bob);
      await phoenixUntil(
        b,
        bobStore,
        ["conversations"],
        new RegExp(`${group}\\s+Across\\s+2 members`),
        "the group at bob",
      );
      await phoenix(a, aliceStore, "send", group, "group hello");
      const atBob = await phoenixUntil(
        b,
        bobStore,
        ["messages", group],
        /group hello/,
        "the group message at bob",
      );
      expect(atBob.input).toContain("* Alice added you");
      await phoenix(b, bobStore, "send", group, "group reply");
      await phoenixUntil(a, aliceStore, ["messages", group], /group reply/, "bob's group message at alice");
    }, 600_000);
  },
);
