// The operator admin API end to end through the `phoenix-admin` CLI, against one deployment of
// each kind: every command of the AS, federation gateway and QS admin APIs, refusals for callers
// without (or with a wrong) operator key and for calls through the public edge and the
// federation gateway, a suspended user refused, audit lines and rows present and free of
// handles, invite codes and message content.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { runAdminCli } from "@phoenix/auth";
import type { PhoenixClient } from "@phoenix/client";
import { parseUserId } from "@phoenix/crypto";
import {
  admin,
  createChannel,
  createClient,
  FederationAdminServiceDefinition,
  FederationProxyServiceDefinition,
  federation,
  rpcCatalog,
} from "@phoenix/proto";
import {
  type Deployment,
  type DeploymentKind,
  deploymentStores,
  describeHits,
  freePorts,
  NeedleSet,
  scanSeizableStores,
  startDeployment,
  TestClients,
} from "@phoenix/test-harness";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const REPO = join(import.meta.dirname, "..", "..", "..", "..");
const HANDLE = "admin_scan_handle";

/** What one CLI run printed and returned. */
interface CliResult {
  code: number;
  out: string[];
  err: string[];
}

/** Defines the admin scenarios against a fresh deployment of `kind`. */
export function defineAdminScenarios(kind: DeploymentKind): void {
  describe(`phoenix-admin against the ${kind} deployment`, () => {
    let deployment: Deployment;
    let clients: TestClients;
    let dir: string;
    /** The flags naming the admin listener and the operator key. */
    let target: string[];
    let alice: PhoenixClient;
    let bob: PhoenixClient;
    const createdInvites: string[] = [];

    const cli = async (...argv: string[]): Promise<CliResult> => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await runAdminCli(argv, { out: (l) => out.push(l), err: (l) => err.push(l) }, {});
      return { code, out, err };
    };
    const ok = async (...argv: string[]): Promise<string[]> => {
      const result = await cli(...target, ...argv);
      expect(result, result.err.join("\n")).toMatchObject({ code: 0 });
      return result.out;
    };
    const json = async <T>(...argv: string[]): Promise<T> =>
      JSON.parse((await ok("--json", ...argv))[0] ?? "") as T;

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "phoenix-admin-e2e-"));
      if (kind === "all-in-one") {
        // SERVICES_LOG_LEVEL info: the AS's audit lines are at info (the table has them at any level).
        deployment = await startDeployment({ kind, domain: "admin-aio.e2e.test", logLevel: "info" });
        // The homeserver generated its operator key and wrote its admin address in its data dir.
        target = ["--data-dir", deployment.storage.dataDir as string];
      } else {
        const keyFile = join(dir, "operator.key");
        const generated = await cli("keys", "generate", "--name", "ops", "--out", keyFile);
        expect(generated.code).toBe(0);
        // Each service with an admin API has its own listener; one operator key for all three.
        const [port, fedPort, queuePort] = (await freePorts(3)) as [number, number, number];
        deployment = await startDeployment({
          kind,
          domain: "admin-svc.e2e.test",
          env: { ADMIN_OPERATOR_KEYS: generated.out[0] as string },
          serviceEnv: {
            auth: { ADMIN_GRPC_PORT: String(port) },
            "federation-gateway": { ADMIN_GRPC_PORT: String(fedPort) },
            queue: { ADMIN_GRPC_PORT: String(queuePort) },
          },
        });
        target = [
          "--admin",
          `127.0.0.1:${port}`,
          "--federation-admin",
          `127.0.0.1:${fedPort}`,
          "--queue-admin",
          `127.0.0.1:${queuePort}`,
          "--operator-key",
          keyFile,
        ];
      }
      clients = await TestClients.create("phoenix-admin-clients-");
      alice = await clients.register(deployment.url, deployment.domain, "Alice Admintest");
      bob = await clients.register(deployment.url, deployment.domain, "Bob Admintest");
      await alice.createHandle(HANDLE);
    }, 240_000);
    afterAll(async () => {
      await clients?.close();
      await deployment?.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    }, 60_000);

    it("refuses callers without an operator key, with a wrong key, or under an unknown name", async () => {
      const empty = join(dir, "empty");
      const missing = await cli("--data-dir", empty, "stats");
      expect(missing.code).toBe(2);
      expect(missing.err.join("\n")).toMatch(/no --admin HOST:PORT given/);
      const address = target.includes("--admin")
        ? (target[target.indexOf("--admin") + 1] as string)
        : (await readFile(join(target[1] as string, "admin", "address"), "utf8")).trim();
      if (kind === "all-in-one") {
        // The generated operator key is the operator's secret: readable by the homeserver's user only.
        const mode = (await stat(join(target[1] as string, "admin", "operator.key"))).mode & 0o777;
        expect(mode.toString(8)).toBe("600");
      }
      const noKey = await cli("--admin", address, "--operator-key", join(dir, "none.key"), "stats");
      expect(noKey).toMatchObject({ code: 1 });
      expect(noKey.err.join("\n")).toMatch(/none\.key does not exist/);

      // The right operator name with another key: the signature does not verify.
      const name = kind === "all-in-one" ? "local" : "ops";
      const wrongKey = join(dir, "wrong.key");
      expect((await cli("keys", "generate", "--name", name, "--out", wrongKey)).code).toBe(0);
      const wrong = await cli("--admin", address, "--operator-key", wrongKey, "stats");
      expect(wrong.code).toBe(1);
      expect(wrong.err[0]).toBe(
        `phoenix-admin stats: the server refused GetDomainStats: signature of operator "${name}" does not verify (UNAUTHENTICATED)`,
      );
      // The federation gateway's and the QS's admin APIs check the same way.
      const flag = (name: string) =>
        target.includes(name)
          ? [name, target[target.indexOf(name) + 1] as string]
          : ["--data-dir", target[1] as string];
      for (const [listener, command, method] of [
        ["--federation-admin", ["federation", "peers"], "ListPeers"],
        ["--queue-admin", ["queues", "stats"], "GetQueueStats"],
      ] as const) {
        const refused = await cli(...flag(listener), "--operator-key", wrongKey, ...command);
        expect(refused.code).toBe(1);
        expect(refused.err[0]).toBe(
          `phoenix-admin ${command.join(" ")}: the server refused ${method}: signature of operator "${name}" does not verify (UNAUTHENTICATED)`,
        );
      }
      const strangerKey = join(dir, "stranger.key");
      expect((await cli("keys", "generate", "--name", "mallory", "--out", strangerKey)).code).toBe(0);
      const stranger = await cli("--admin", address, "--operator-key", strangerKey, "users", "list");
      expect(stranger.code).toBe(1);
      expect(stranger.err[0]).toMatch(
        /unknown operator "mallory" \(not in ADMIN_OPERATOR_KEYS\) \(UNAUTHENTICATED\)$/,
      );
      // A wrong command line is exit 2 with the usage.
      const usage = await cli(...target, "users", "suspend", "not-a-user");
      expect(usage.code).toBe(2);
      expect(usage.err.join("\n")).toMatch(/usage: phoenix-admin users suspend USER_ID/);
    });

    it("is unreachable through the public edge gateway and the federation gateway", async () => {
      // The edge maps only the AS, DS and QS; the federation gateway forwards only `federated` RPCs.
      const adminRpcs = rpcCatalog().filter((rpc) => rpc.service.startsWith("phoenix.admin."));
      expect(adminRpcs.length).toBe(19);
      expect(adminRpcs.filter((rpc) => rpc.policy?.federated)).toEqual([]);
      for (const path of [
        "/v1/admin/stats",
        "/phoenix.admin.v1.AuthAdminService/GetDomainStats",
        "/phoenix.admin.v1.FederationAdminService/SetFederationPolicy",
        "/phoenix.admin.v1.QueueAdminService/GetQueueStats",
      ]) {
        const response = await fetch(`${deployment.url}${path}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: "{}",
        });
        expect(response.status, path).toBe(404);
        await response.body?.cancel();
      }
      if (kind === "all-in-one") {
        // The ready line names every listener: the public AS port does not serve the admin API,
        // and the federation proxy refuses to forward an admin method to any domain.
        const ready = deployment.processes[0]?.lines.find((l) =>
          String(l.msg).startsWith("homeserver ready"),
        );
        const services = (ready as unknown as { services: Record<string, string> }).services;
        expect(services.authAdmin).not.toBe(services.auth);
        const publicAs = createChannel(services.auth as string);
        try {
          const onPublic = createClient(admin.AuthAdminServiceDefinition, publicAs);
          await expect(onPublic.getDomainStats({})).rejects.toMatchObject({ code: 12 }); // UNIMPLEMENTED
        } finally {
          publicAs.close();
        }
        // Nor does the federation gateway's public (server-to-server) listener.
        const publicFederation = createChannel(services.federation as string);
        try {
          const onPublic = createClient(FederationAdminServiceDefinition, publicFederation);
          await expect(onPublic.listPeers({})).rejects.toMatchObject({ code: 12 }); // UNIMPLEMENTED
        } finally {
          publicFederation.close();
        }
        const internal = createChannel(services.federationInternal as string);
        try {
          const proxy = createClient(FederationProxyServiceDefinition, internal);
          for (const method of [
            "phoenix.admin.v1.AuthAdminService/DeleteUser",
            "phoenix.admin.v1.FederationAdminService/SetFederationPolicy",
            "phoenix.admin.v1.QueueAdminService/GetQueueStats",
          ]) {
            const refused = await proxy
              .proxy(
                federation.ProxyRequest.fromPartial({
                  destinationDomain: "elsewhere.test",
                  method,
                  request: new Uint8Array(),
                }),
              )
              .then(
                () => undefined,
                (error: unknown) => error as { code: number; details: string },
              );
            // Not a forwardable method: refused before anything leaves the homeserver.
            expect(refused?.details, method).toMatch(
              /^(unknown method phoenix\.admin\.v1\.|.*cannot be reached through federation)/,
            );
          }
        } finally {
          internal.close();
        }
      }
    });

    it("shows the domain's counts, lists and looks users up (by id and by hashed handle)", async () => {
      const stats = await json<Record<string, number>>("stats");
      expect(stats).toMatchObject({ users: 2, clients: 2, handles: 1, suspendedUsers: 0 });
      const page1 = await json<{ users: { userId: string }[]; nextPageToken: string }>(
        "users",
        "list",
        "--page-size",
        "1",
      );
      expect(page1.users).toHaveLength(1);
      expect(page1.nextPageToken).not.toBe("");
      const page2 = await json<{ users: { userId: string }[]; nextPageToken: string }>(
        "users",
        "list",
        "--page-size",
        "1",
        "--page-token",
        page1.nextPageToken,
      );
      expect([...page1.users, ...page2.users].map((u) => u.userId).sort()).toEqual(
        [alice.userId, bob.userId].sort(),
      );
      expect(await ok("users", "lookup", alice.userId)).toEqual([`${alice.userId}  clients=1`]);
      expect((await ok("users", "lookup", "--handle", HANDLE))[0]).toMatch(/^handle exists/);
      const unknown = await cli(...target, "users", "lookup", "--handle", "nobody_has_this");
      expect(unknown.code).toBe(1);
      expect(unknown.err[0]).toMatch(/no such handle, or it expired \(NOT_FOUND\)$/);
    });

    it("shows queue counts as histograms only", async () => {
      type Buckets = { upTo: number | null; count: number }[];
      const stats = await json<{
        queues: number;
        messages: number;
        depth: Buckets;
        oldestMessageAgeSeconds: Buckets;
      }>("queues", "stats");
      // Alice's and Bob's clients each have a queue; nothing names one.
      expect(stats.queues).toBe(2);
      expect(stats.depth.map((b) => b.upTo)).toEqual([0, 1, 10, 100, 1000, 10000, null]);
      expect(stats.depth.reduce((n, b) => n + b.count, 0)).toBe(stats.queues);
      expect(stats.oldestMessageAgeSeconds.map((b) => b.upTo)).toEqual([3600, 86400, 604800, 2592000, null]);
      expect(JSON.stringify(stats)).not.toMatch(/[0-9a-f]{32}/);
      const text = await ok("queues", "stats");
      expect(text[0]).toBe("queues: 2");
      expect(text[2]).toMatch(/^depth: ≤0=\d+ {2}≤1=\d+/);
    });

    it("shows and changes the federation policy at runtime, and lists peers", async () => {
      expect(await json("federation", "policy", "get")).toEqual({
        mode: "allowlist",
        allowed: [],
        denied: [],
        fromConfig: true,
      });
      expect(await ok("federation", "policy", "set", "--mode", "open", "--deny", "evil.example.org")).toEqual(
        ["mode: open (set)", "allowed: (none)", "denied: evil.example.org"],
      );
      expect(await json("federation", "policy", "get")).toEqual({
        mode: "open",
        allowed: [],
        denied: ["evil.example.org"],
        fromConfig: false,
      });
      // Checked by the CLI (exit 2) and by the gateway (its own domain; exit 1, nothing changed).
      const notFqdn = await cli(...target, "federation", "policy", "set", "--mode", "open", "--deny", "Evil");
      expect(notFqdn.code).toBe(2);
      expect(notFqdn.err[0]).toMatch(/--deny: "Evil" is not a lower-case fully qualified domain name/);
      const own = await cli(
        ...target,
        "federation",
        "policy",
        "set",
        "--mode",
        "open",
        "--deny",
        deployment.domain,
      );
      expect(own.code).toBe(1);
      expect(own.err[0]).toMatch(/is this homeserver's own domain \(INVALID_ARGUMENT\)$/);
      const noMode = await cli(...target, "federation", "policy", "set");
      expect(noMode.code).toBe(2);
      expect((await json<{ mode: string }>("federation", "policy", "get")).mode).toBe("open");
      // One homeserver alone has no peers yet.
      expect(await json("federation", "peers")).toEqual({ peers: [] });
      expect(await ok("federation", "peers")).toEqual(["no peers yet"]);
      await ok("federation", "policy", "set", "--mode", "allowlist");
    });

    it("suspends a user, whose client is then refused with PERMISSION_DENIED, and lifts it", async () => {
      await ok("users", "suspend", alice.userId);
      expect(await ok("users", "lookup", alice.userId)).toEqual([`${alice.userId}  clients=1  suspended`]);
      await expect(alice.sync()).rejects.toThrow(/user suspended/);
      await bob.sync();
      await ok("users", "unsuspend", alice.userId);
      await alice.sync();
    });

    it("lists a user's clients and revokes a client credential", async () => {
      const listed = await json<{ clients: { clientId: string; fingerprint: string; revoked: boolean }[] }>(
        "clients",
        "list",
        bob.userId,
      );
      expect(listed.clients).toHaveLength(1);
      const [client] = listed.clients as [{ clientId: string; fingerprint: string; revoked: boolean }];
      expect(client.clientId.endsWith(`:${bob.userId}`)).toBe(true);
      expect(client.revoked).toBe(false);
      expect(await ok("clients", "revoke", client.clientId)).toEqual([
        `revoked credential ${client.fingerprint}`,
      ]);
      const after = await json<{ clients: { revoked: boolean }[] }>("clients", "list", bob.userId);
      expect(after.clients[0]?.revoked).toBe(true);
      await expect(bob.sync()).rejects.toThrow(/revoked/);
      // Served to everyone as every revocation: GetAsCredentials lists the fingerprint.
      const response = await fetch(`${deployment.url}/v1/as/credentials`);
      const body = (await response.json()) as { revokedFingerprints?: string[] };
      const revoked = (body.revokedFingerprints ?? []).map((b) => Buffer.from(b, "base64").toString("hex"));
      expect(revoked).toContain(client.fingerprint);
    });

    it("rotates and revokes the AS intermediate", async () => {
      const rotated = await json<{ fingerprint: string; notAfter: string }>("intermediate", "rotate");
      expect(rotated.fingerprint).toMatch(/^[0-9a-f]{64}$/);
      const revoked = await json<{ revoked: string; current: string }>(
        "intermediate",
        "revoke",
        rotated.fingerprint,
      );
      expect(revoked.current).not.toBe(rotated.fingerprint);
      const unknown = await cli(...target, "intermediate", "revoke", "00".repeat(32));
      expect(unknown.code).toBe(1);
      expect(unknown.err[0]).toMatch(/no AS intermediate with this fingerprint \(NOT_FOUND\)$/);
      // A client under the revoked intermediate's successor still works: Alice registered under
      // the first one, which stays valid.
      await alice.sync();
    });

    it("switches registration at runtime and manages invite codes", async () => {
      expect(await json("registration", "get")).toEqual({ mode: "open", fromConfig: true });
      await ok("registration", "set", "closed");
      expect(await json("registration", "get")).toEqual({ mode: "closed", fromConfig: false });
      await expect(clients.register(deployment.url, deployment.domain, "Carol Closed")).rejects.toThrow(
        /registration is disabled/,
      );
      await ok("registration", "set", "invite");
      const invite = await json<{ code: string; id: string }>("invites", "create", "--uses", "1");
      createdInvites.push(invite.code);
      await expect(clients.register(deployment.url, deployment.domain, "Carol Noinvite")).rejects.toThrow(
        /requires an invite code/,
      );
      const carol = await PhoenixClientRegister(clients, deployment, "Carol Invited", invite.code);
      expect(carol.userId).toMatch(/@/);
      await expect(PhoenixClientRegister(clients, deployment, "Dave Late", invite.code)).rejects.toThrow(
        /used up/,
      );
      const second = await json<{ code: string; id: string }>("invites", "create", "--uses", "5");
      createdInvites.push(second.code);
      const listed = await json<{ codes: { id: string; uses: number; maxUses: number; revoked: boolean }[] }>(
        "invites",
        "list",
      );
      expect(listed.codes).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ id: invite.id, uses: 1, maxUses: 1, revoked: false }),
          expect.objectContaining({ id: second.id, uses: 0, maxUses: 5, revoked: false }),
        ]),
      );
      await ok("invites", "revoke", second.id);
      await expect(PhoenixClientRegister(clients, deployment, "Erin Revoked", second.code)).rejects.toThrow(
        /has been revoked/,
      );
      await ok("registration", "set", "open");
    });

    it("deletes a user with the same effects as its own deletion", async () => {
      const bobId = parseUserId(bob.userId);
      expect(bobId.domain).toBe(deployment.domain);
      await ok("users", "delete", bob.userId);
      const gone = await cli(...target, "users", "lookup", bob.userId);
      expect(gone.code).toBe(1);
      expect(gone.err[0]).toMatch(/no such user \(NOT_FOUND\)$/);
      const stats = await json<Record<string, number>>("stats");
      expect(stats.users).toBe(2); // Alice and Carol
      // Alice's connection attempt to Bob finds nobody.
      await expect(alice.connect(bob.userId)).rejects.toThrow();
    });

    it("writes every call to the audit log, with no handle, invite code or content", async () => {
      const auditing = deployment.processes.find((p) => p.name === "auth" || p.name === "homeserver");
      const lines = (auditing?.lines ?? []).filter(
        (l) => (l as { audit?: boolean }).audit === true,
      ) as unknown as {
        operator: string;
        method: string;
        target: string;
        outcome: string;
        authenticated: boolean;
      }[];
      const methods = new Set(lines.map((l) => l.method));
      for (const method of [
        "LookupUser",
        "ListUsers",
        "SuspendUser",
        "UnsuspendUser",
        "DeleteUser",
        "ListClients",
        "RevokeClientCredential",
        "RotateIntermediate",
        "RevokeIntermediate",
        "GetRegistration",
        "SetRegistration",
        "CreateInviteCode",
        "ListInviteCodes",
        "RevokeInviteCode",
        "GetDomainStats",
      ]) {
        expect(methods, method).toContain(method);
      }
      // The federation gateway's and the QS's calls: in the one process, or in their own.
      const auditOf = (name: string) =>
        (deployment.processes.find((p) => p.name === name || p.name === "homeserver")?.lines ?? []).filter(
          (l) => (l as { audit?: boolean }).audit === true,
        ) as unknown as { method: string; outcome: string; target: string }[];
      const fedLines = auditOf("federation-gateway");
      for (const method of ["ListPeers", "GetFederationPolicy", "SetFederationPolicy"])
        expect(
          fedLines.map((l) => l.method),
          method,
        ).toContain(method);
      expect(fedLines).toContainEqual(
        expect.objectContaining({ method: "SetFederationPolicy", outcome: "INVALID_ARGUMENT" }),
      );
      expect(auditOf("queue").map((l) => l.method)).toContain("GetQueueStats");
      expect(lines).toContainEqual(
        expect.objectContaining({ operator: "mallory", authenticated: false, outcome: "UNAUTHENTICATED" }),
      );
      expect(lines).toContainEqual(
        expect.objectContaining({ method: "SuspendUser", target: `user ${alice.userId}`, outcome: "ok" }),
      );
      const text = JSON.stringify(lines);
      for (const secret of [HANDLE, ...createdInvites]) expect(text).not.toContain(secret);
      if (kind === "services") {
        const url = new URL(process_env("DATABASE_URL"));
        url.pathname = `/${deployment.storage.databases.find((d) => d.endsWith("_auth"))}`;
        const db = new pg.Client({ connectionString: url.toString() });
        await db.connect();
        try {
          const rows = (
            await db.query("SELECT operator, authenticated, method, target, outcome FROM admin_audit")
          ).rows;
          expect(rows.length).toBe(lines.length);
          const stored = JSON.stringify(rows);
          for (const secret of [HANDLE, ...createdInvites]) expect(stored).not.toContain(secret);
        } finally {
          await db.end();
        }
        // The gateway's and the QS's own admin_audit tables hold their calls, each one line.
        for (const [suffix, process] of [
          ["_federation", "federation-gateway"],
          ["_queue", "queue"],
        ] as const) {
          url.pathname = `/${deployment.storage.databases.find((d) => d.endsWith(suffix))}`;
          const other = new pg.Client({ connectionString: url.toString() });
          await other.connect();
          try {
            const rows = (await other.query("SELECT method, outcome FROM admin_audit")).rows;
            expect(rows.length, suffix).toBe(auditOf(process).length);
            expect(rows.length, suffix).toBeGreaterThan(0);
          } finally {
            await other.end();
          }
        }
      }
      // The snapshot scan over every store (databases, data dir, logs): handles, display names
      // and the invite codes only where the store policy allows them.
      const needles = new NeedleSet();
      needles.add("handle", "Alice's handle", HANDLE);
      for (const [i, code] of createdInvites.entries()) needles.add("text", `invite code ${i + 1}`, code);
      const result = await scanSeizableStores(deploymentStores(deployment), needles);
      expect(result.scan.report.hits, describeHits(result.scan.report.hits)).toEqual([]);
      expect(result.scan.report.blobs).toBeGreaterThan(0);
    });

    it("runs as the phoenix-admin command", async () => {
      const { stdout } = await run(
        process.execPath,
        ["--conditions=source", "--import", "tsx", "services/auth/src/admin/cli/main.ts", ...target, "stats"],
        { cwd: REPO, timeout: 60_000 },
      );
      expect(stdout).toMatch(/^users: 2$/m);
      const help = await run(
        process.execPath,
        [
          "--conditions=source",
          "--import",
          "tsx",
          "services/auth/src/admin/cli/main.ts",
          "users",
          "suspend",
          "--help",
        ],
        { cwd: REPO, timeout: 60_000 },
      );
      expect(help.stdout).toMatch(/^usage: phoenix-admin users suspend USER_ID$/m);
    });
  });
}

function process_env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

/** Registers through the edge gateway with an invite code. */
async function PhoenixClientRegister(
  clients: TestClients,
  deployment: Deployment,
  name: string,
  inviteCode: string,
): Promise<PhoenixClient> {
  const { PhoenixClient } = await import("@phoenix/client");
  return PhoenixClient.register({
    transport: clients.transport(deployment.url),
    storePath: clients.storePath(name.replaceAll(" ", "-")),
    domain: deployment.domain,
    displayName: name,
    inviteCode,
  });
}
