import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import { type DatabaseHandle, DatabaseOpenError, openDatabase } from "../db/open-database.js";

export interface TestDatabaseOptions<TSchema extends Record<string, unknown>> {
  /** The service's drizzle-kit migrations folder, applied like at service start. */
  migrationsFolder?: string;
  schema?: TSchema;
  /** pg only: pool size (default 10). */
  poolMax?: number;
}

/** A throw-away database; `close()` closes it and removes every trace of it. */
export interface TestDatabase<TSchema extends Record<string, unknown> = Record<string, never>>
  extends DatabaseHandle<TSchema> {
  /** pg only: the database's URL, to open further handles on it (a second "replica"). */
  readonly url: string | undefined;
}

/** `DATABASE_URL` is not set, so there is no Postgres server to create test databases on. */
export class TestDatabaseError extends Error {
  override readonly name = "TestDatabaseError";
}

/**
 * Creates a fresh, uniquely named database on the server of `DATABASE_URL`, applies the
 * runtime's and the given migrations, and drops the database on `close()`. Test files using it
 * can run in parallel and re-run cleanly.
 */
export async function createTestDatabase<TSchema extends Record<string, unknown> = Record<string, never>>(
  options: TestDatabaseOptions<TSchema> = {},
): Promise<TestDatabase<TSchema>> {
  const serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) {
    throw new TestDatabaseError(
      "DATABASE_URL is not set: run tests through vitest (its global setup sets it)",
    );
  }
  const name = `test_${randomBytes(8).toString("hex")}`;
  await adminQuery(serverUrl, `CREATE DATABASE "${name}"`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  let handle: DatabaseHandle<TSchema>;
  try {
    handle = await openDatabase({
      driver: "pg",
      url: url.toString(),
      ...(options.poolMax ? { poolMax: options.poolMax } : {}),
      ...(options.migrationsFolder ? { migrationsFolder: options.migrationsFolder } : {}),
      ...(options.schema ? { schema: options.schema } : {}),
    });
  } catch (error) {
    await adminQuery(serverUrl, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    throw error;
  }
  return {
    ...handle,
    url: url.toString(),
    async close() {
      await handle.close();
      // FORCE: a connection a test leaked (or a killed "replica") must not keep the database alive.
      await adminQuery(serverUrl, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    },
  };
}

/**
 * Opens a fresh in-memory PGlite database with the runtime's and the given migrations. PGlite's
 * initdb costs seconds, so the pristine data directory is cached as a tarball in the OS temp
 * directory and later instances (in any test process) start from it.
 */
export async function createTestPglite<TSchema extends Record<string, unknown> = Record<string, never>>(
  options: TestDatabaseOptions<TSchema> = {},
): Promise<TestDatabase<TSchema>> {
  const open = async (): Promise<DatabaseHandle<TSchema>> =>
    openDatabase({
      driver: "pglite",
      loadDataDir: await pristinePgliteDump(),
      ...(options.migrationsFolder ? { migrationsFolder: options.migrationsFolder } : {}),
      ...(options.schema ? { schema: options.schema } : {}),
    });
  let handle: DatabaseHandle<TSchema>;
  try {
    handle = await open();
  } catch (error) {
    if (!(error instanceof DatabaseOpenError)) throw error;
    // A damaged cached tarball: throw it away and start from a fresh initdb once.
    await rm(pristineDumpFile(), { force: true });
    pristineDump = undefined;
    handle = await open();
  }
  return { ...handle, url: undefined };
}

async function adminQuery(serverUrl: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

let pristineDump: Promise<Blob> | undefined;

function pristinePgliteDump(): Promise<Blob> {
  pristineDump ??= loadOrCreateDump();
  return pristineDump;
}

function pristineDumpFile(): string {
  return join(tmpdir(), `phoenix-pglite-${pgliteVersion()}-pristine.tar`);
}

async function loadOrCreateDump(): Promise<Blob> {
  const file = pristineDumpFile();
  try {
    return new Blob([await readFile(file)]);
  } catch {
    // Not cached yet (or unreadable): run initdb once and cache the result.
  }
  const instance = await PGlite.create();
  let dump: Blob;
  try {
    dump = await instance.dumpDataDir("none");
  } finally {
    await instance.close();
  }
  // Write-then-rename, so a parallel test process never reads a half-written tarball.
  const partial = `${file}.${process.pid}.${randomBytes(4).toString("hex")}`;
  try {
    await writeFile(partial, new Uint8Array(await dump.arrayBuffer()));
    await rename(partial, file);
  } catch {
    await rm(partial, { force: true });
  }
  return dump;
}

function pgliteVersion(): string {
  // The package does not export its package.json: find it next to the resolved entry point.
  try {
    const entry = createRequire(import.meta.url).resolve("@electric-sql/pglite");
    const manifest = JSON.parse(readFileSync(join(dirname(entry), "..", "package.json"), "utf8")) as {
      version?: unknown;
    };
    return typeof manifest.version === "string" ? manifest.version : "unknown";
  } catch {
    return "unknown";
  }
}
