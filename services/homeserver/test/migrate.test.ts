// `migrate` (the image's migrate command) against the Postgres server of DATABASE_URL: every
// service database comes up to date, a second run changes nothing, and a bad URL is refused with
// a one-line error naming the variable.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ConfigError } from "@phoenix/runtime/config";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MIGRATION_TARGETS, MigrateError, migrateDatabases } from "../src/migrate.js";

const REPO_ROOT = fileURLToPath(new URL("../../..", import.meta.url));

const serverUrl = (): string => {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error("DATABASE_URL is not set: run the tests through vitest");
  return url;
};

function databaseUrl(database: string): string {
  const url = new URL(serverUrl());
  url.pathname = `/${database}`;
  return url.toString();
}

async function query<R extends pg.QueryResultRow>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** The tables of a database (`schema.table`), and how many migrations each journal recorded. */
async function schemaOf(url: string): Promise<{ tables: string[]; service: number; runtime: number }> {
  const tables = await query<{ name: string }>(
    url,
    `SELECT table_schema || '.' || table_name AS name FROM information_schema.tables
      WHERE table_schema IN ('public', 'phoenix_runtime') ORDER BY 1`,
  );
  const [counts] = await query<{ service: number; runtime: number }>(
    url,
    `SELECT (SELECT count(*)::int FROM drizzle.__drizzle_migrations) AS service,
            (SELECT count(*)::int FROM drizzle.__phoenix_runtime_migrations) AS runtime`,
  );
  return { tables: tables.map((t) => t.name), service: counts?.service ?? 0, runtime: counts?.runtime ?? 0 };
}

/** A table each service's migrations create, so an empty or wrong folder cannot pass. */
const EXPECTED_TABLE = {
  auth: "clients",
  delivery: "groups",
  queue: "qs_clients",
  federation: "fed_outbound_peers",
};

describe("migrate", () => {
  const prefix = `mig_${randomBytes(5).toString("hex")}_`;
  const env: Record<string, string> = {};
  for (const target of MIGRATION_TARGETS) env[target.variable] = databaseUrl(`${prefix}${target.service}`);

  beforeAll(async () => {
    for (const target of MIGRATION_TARGETS)
      await query(serverUrl(), `CREATE DATABASE "${prefix}${target.service}"`);
  });
  afterAll(async () => {
    for (const target of MIGRATION_TARGETS) {
      await query(serverUrl(), `DROP DATABASE IF EXISTS "${prefix}${target.service}" WITH (FORCE)`);
    }
  });

  it("brings every service database up to date, and a second run changes nothing", async () => {
    const reported: string[] = [];
    const first = await migrateDatabases(env, (done) => reported.push(done.service));
    expect(first.map((m) => m.service)).toEqual(["auth", "delivery", "queue", "federation"]);
    expect(reported).toEqual(["auth", "delivery", "queue", "federation"]);

    const before: Record<string, Awaited<ReturnType<typeof schemaOf>>> = {};
    for (const target of MIGRATION_TARGETS) {
      const schema = await schemaOf(env[target.variable] as string);
      expect(schema.tables).toContain(`public.${EXPECTED_TABLE[target.service]}`);
      expect(schema.tables).toContain("phoenix_runtime.outbox"); // the runtime's migrations too
      expect(schema.runtime).toBeGreaterThan(0);
      expect(schema.service).toBeGreaterThan(0);
      before[target.service] = schema;
    }

    await migrateDatabases(env);
    for (const target of MIGRATION_TARGETS) {
      expect(await schemaOf(env[target.variable] as string)).toEqual(before[target.service]);
    }
  });

  it("migrates only the databases it is given", async () => {
    const migrated = await migrateDatabases({ QUEUE_DATABASE_URL: env.QUEUE_DATABASE_URL });
    expect(migrated).toEqual([
      { service: "queue", variable: "QUEUE_DATABASE_URL", url: expect.stringContaining(`${prefix}queue`) },
    ]);
  });

  it("refuses to run with no database, naming the variables", async () => {
    await expect(migrateDatabases({})).rejects.toThrow(MigrateError);
    await expect(migrateDatabases({})).rejects.toThrow(/AUTH_DATABASE_URL.*FEDERATION_DATABASE_URL/);
  });

  it("names the variable of a URL that is not Postgres", async () => {
    const error = await migrateDatabases({ AUTH_DATABASE_URL: "mysql://db/auth" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues.map((i) => i.variable)).toEqual(["AUTH_DATABASE_URL"]);
  });

  it("reports an unreachable server without its password, as one line and exit code 1", async () => {
    const badUrl = "postgres://migrator:s3cret@127.0.0.1:1/nowhere";
    const error = await migrateDatabases({ DELIVERY_DATABASE_URL: badUrl }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrateError);
    expect((error as Error).message).toMatch(/^delivery \(DELIVERY_DATABASE_URL\): cannot connect to /);
    expect((error as Error).message).not.toContain("s3cret");

    const run = await promisify(execFile)(
      process.execPath,
      ["--conditions=source", "--import", "tsx", "services/homeserver/src/migrate-main.ts"],
      { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? "", DELIVERY_DATABASE_URL: badUrl } },
    ).then(
      () => ({ code: 0, stderr: "" }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );
    expect(run.code).toBe(1);
    expect(run.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(run.stderr).toMatch(/^migrate: failed: delivery \(DELIVERY_DATABASE_URL\): cannot connect/);
    expect(run.stderr).not.toContain("s3cret");
  });
});
