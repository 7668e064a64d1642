// The backup and restore drill of docs/operations.md, with the operator's scripts
// (deploy/ops/backup.sh, restore.sh): users chat, the deployment is backed up, destroyed and
// restored into new databases under the same secrets and port, and the same clients (their
// local state kept) carry on. Plus: a restore under other secrets refuses to serve, and the
// all-in-one's stopped data-directory copy.
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PhoenixClient } from "@phoenix/client";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connectUsers,
  copyDataDir,
  type Deployment,
  libpqEnv,
  membersOf,
  OpsScriptError,
  ProcessStartError,
  randomDeploymentSecrets,
  readKeysFile,
  runOpsScript,
  serviceDatabaseUrls,
  startDeployment,
  syncUntil,
  TestClients,
  textsOf,
} from "../src/index.js";

const DATABASE_URL = process.env.DATABASE_URL as string;

async function existingDatabases(names: readonly string[]): Promise<string[]> {
  const client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  try {
    const result = await client.query<{ datname: string }>(
      "SELECT datname FROM pg_database WHERE datname = ANY($1) ORDER BY datname",
      [names],
    );
    return result.rows.map((r) => r.datname);
  } finally {
    await client.end();
  }
}

/** `<ns>_` of a services deployment (its databases are `<ns>_auth`, …). */
function prefixOf(d: Deployment): string {
  const auth = d.storage.databases.find((name) => name.endsWith("_auth")) as string;
  return auth.slice(0, -"auth".length);
}

function portOf(d: Deployment): number {
  return Number(new URL(d.url).port);
}

describe("backup and restore drill: five services", () => {
  const domain = "drill.test";
  const deployments: Deployment[] = [];
  let clients: TestClients;
  let work: string;
  let alice: PhoenixClient;
  let bob: PhoenixClient;
  let carol: PhoenixClient;
  let aliceBob: string;
  let group: string;
  let original: Deployment;
  let backupDir: string;
  let keysFile: string;

  beforeAll(async () => {
    clients = await TestClients.create("phoenix-drill-clients-");
    work = await mkdtemp(join(tmpdir(), "phoenix-drill-"));
    backupDir = join(work, "backup");
    keysFile = join(work, "keys.env");
    original = await startDeployment({ kind: "services", domain, logLevel: "warn" });
    deployments.push(original);
  }, 240_000);
  afterAll(async () => {
    await clients?.close();
    for (const d of deployments) await d.stop().catch(() => undefined);
    if (work) await rm(work, { recursive: true, force: true });
  }, 120_000);

  it("users chat, a message waits unread in a queue, and backup.sh dumps the four databases", async () => {
    alice = await clients.register(original.url, domain, "Alice");
    bob = await clients.register(original.url, domain, "Bob");
    carol = await clients.register(original.url, domain, "Carol");
    aliceBob = await connectUsers(alice, bob);
    await connectUsers(alice, carol);
    group = await alice.createConversation("Drill");
    await alice.invite(group, [bob.userId, carol.userId]);
    for (const c of [bob, carol])
      await syncUntil(c, () => c.conversations().some((x) => x.id === group), "the Welcome");
    await bob.sendMessage(group, "before the backup");
    for (const c of [alice, carol])
      await syncUntil(c, () => textsOf(c, group).includes("before the backup"), "Bob's message");
    // One fan-out carries a group message to every member's queue: once Alice has it, Carol's
    // queue holds it too — and Carol does not fetch it before the backup.
    await bob.sendMessage(group, "unread across the restore");
    await syncUntil(alice, () => textsOf(alice, group).includes("unread across the restore"), "the message");

    const prefix = prefixOf(original);
    // The chart's database Secret gives one URL per service: back up as an operator there would.
    const { stdout } = await runOpsScript("backup.sh", ["--keys-out", keysFile, backupDir], {
      ...serviceDatabaseUrls(DATABASE_URL, prefix),
      ...original.secrets,
    });
    expect(stdout).toContain("backup.sh: done");
    for (const service of ["auth", "delivery", "federation", "queue"])
      expect((await stat(join(backupDir, `${service}.dump`))).size).toBeGreaterThan(0);
    expect((await stat(keysFile)).mode & 0o777).toBe(0o600);
    expect(await readKeysFile(keysFile)).toEqual(original.secrets);

    // A second backup into the same directory would mix two points in time.
    const again = await runOpsScript(
      "backup.sh",
      [backupDir],
      serviceDatabaseUrls(DATABASE_URL, prefix),
    ).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(OpsScriptError);
    expect((again as OpsScriptError).output).toContain("is not empty");
  }, 180_000);

  it("after destroy and restore (same secrets, same port) the same clients carry on", async () => {
    const prefix = prefixOf(original);
    const namespace = prefix.slice(0, -1);
    const port = portOf(original);
    const databases = [...original.storage.databases];
    // Destroy: processes stopped, databases dropped, streams deleted.
    await original.stop();
    expect(await existingDatabases(databases)).toEqual([]);

    // Restore into new databases (restore.sh creates them), then start on them.
    const { stdout } = await runOpsScript(
      "restore.sh",
      ["--prefix", prefix, backupDir],
      libpqEnv(DATABASE_URL),
    );
    expect(stdout).toContain("restore.sh: done");
    expect(await existingDatabases(databases)).toEqual([...databases].sort());
    const restored = await startDeployment({
      kind: "services",
      domain,
      logLevel: "warn",
      namespace,
      existingDatabases: true,
      secrets: await readKeysFile(keysFile),
      port,
    });
    deployments.push(restored);
    expect(restored.url).toBe(original.url);

    // The message that waited in Carol's queue arrives.
    await syncUntil(
      carol,
      () => textsOf(carol, group).includes("unread across the restore"),
      "the unread message",
    );
    expect(textsOf(carol, group)).toEqual(["before the backup", "unread across the restore"]);

    // The old group: everyone sends and receives.
    for (const [sender, others] of [
      [alice, [bob, carol]],
      [bob, [alice, carol]],
      [carol, [alice, bob]],
    ] as const) {
      const text = `${sender.displayName} after the restore`;
      await sender.sendMessage(group, text);
      for (const c of others) await syncUntil(c, () => textsOf(c, group).includes(text), text);
    }
    for (const c of [alice, bob, carol])
      expect(membersOf(c, group)).toEqual([alice.userId, bob.userId, carol.userId].sort());

    // Contacts: still there, the connection conversation works, a new connection can be made.
    expect(bob.contacts().map((c) => c.userId)).toEqual([alice.userId]);
    await alice.sendMessage(aliceBob, "direct after the restore");
    await syncUntil(
      bob,
      () => textsOf(bob, aliceBob).includes("direct after the restore"),
      "Alice's message",
    );
    await connectUsers(bob, carol);

    // A new group.
    const fresh = await carol.createConversation("After");
    await carol.invite(fresh, [alice.userId, bob.userId]);
    for (const c of [alice, bob])
      await syncUntil(c, () => c.conversations().some((x) => x.id === fresh), "the new group's Welcome");
    await alice.sendMessage(fresh, "new group works");
    for (const c of [bob, carol])
      await syncUntil(c, () => textsOf(c, fresh).includes("new group works"), "the new group's message");

    // restore.sh never writes over a deployment's databases.
    const over = await runOpsScript(
      "restore.sh",
      ["--prefix", prefix, backupDir],
      libpqEnv(DATABASE_URL),
    ).catch((e: unknown) => e);
    expect(over).toBeInstanceOf(OpsScriptError);
    expect((over as OpsScriptError).output).toMatch(/auth database \(\w+_auth\) is not empty/);
    expect((over as OpsScriptError).output).toContain("nothing restored");
  }, 300_000);

  it("a restore started with other secrets refuses to serve, naming the key", async () => {
    // A second restore of the same backup under another prefix, started without the keys.
    const namespace = `drill${Date.now().toString(36)}`;
    await runOpsScript("restore.sh", ["--prefix", `${namespace}_`, backupDir], libpqEnv(DATABASE_URL));
    const error = await startDeployment({
      kind: "services",
      domain,
      logLevel: "warn",
      namespace,
      existingDatabases: true,
      secrets: randomDeploymentSecrets(),
      startTimeoutMs: 90_000,
    }).catch((e: unknown) => e);
    // A failed start drops the databases it ran on; make sure, whatever failed.
    const leftovers = ["auth", "delivery", "federation", "queue"].map((s) => `${namespace}_${s}`);
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    for (const name of leftovers) await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await client.end();

    expect(error).toBeInstanceOf(ProcessStartError);
    // Each service whose stored keys are sealed under its secret stops at start; none serves.
    const message = (error as Error).message;
    expect(message).toMatch(/auth exited.*is encrypted under a key that is neither AS_KEY_ENCRYPTION_KEY/s);
    expect(message).toMatch(
      /federation-gateway exited.*is encrypted under a key that is neither FEDERATION_KEY_ENCRYPTION_KEY/s,
    );
    expect(message).toMatch(
      /queue exited.*QS_STORAGE_KEY \(or \$DATA_DIR\/queue\/storage.key\) is not the secret/s,
    );
  }, 180_000);
});

describe("backup and restore drill: all-in-one", () => {
  const domain = "drill-aio.test";
  let clients: TestClients;
  let work: string;
  const deployments: Deployment[] = [];
  beforeAll(async () => {
    clients = await TestClients.create("phoenix-drill-aio-clients-");
    work = await mkdtemp(join(tmpdir(), "phoenix-drill-aio-"));
  });
  afterAll(async () => {
    await clients?.close();
    for (const d of deployments) await d.stop().catch(() => undefined);
    if (work) await rm(work, { recursive: true, force: true });
  }, 60_000);

  it("a copy of the stopped data directory, started elsewhere on the same port, serves the same users", async () => {
    const dataDir = join(work, "data");
    const first = await startDeployment({ kind: "all-in-one", domain, dataDir, logLevel: "warn" });
    deployments.push(first);
    const alice = await clients.register(first.url, domain, "Alice");
    const bob = await clients.register(first.url, domain, "Bob");
    const direct = await connectUsers(alice, bob);
    // Not waited for: whether still on the embedded bus or in Bob's queue, it is in the data dir.
    await alice.sendMessage(direct, "sent before the copy");

    await first.stop();
    const copy = join(work, "restored");
    await copyDataDir(dataDir, copy);
    await rm(dataDir, { recursive: true });
    expect((await stat(join(copy, "queue", "storage.key"))).mode & 0o777).toBe(0o600);

    const second = await startDeployment({
      kind: "all-in-one",
      domain,
      dataDir: copy,
      port: portOf(first),
      logLevel: "warn",
    });
    deployments.push(second);
    await syncUntil(bob, () => textsOf(bob, direct).includes("sent before the copy"), "Alice's message");
    await bob.sendMessage(direct, "reply after the copy");
    await syncUntil(alice, () => textsOf(alice, direct).includes("reply after the copy"), "Bob's reply");
    expect(alice.contacts().map((c) => c.userId)).toEqual([bob.userId]);
  }, 300_000);
});
