import { mkdir, stat } from "node:fs/promises";
import { join } from "node:path";
import {
  type DatabaseConnectionOptions,
  DatabaseOpenError,
  EmbeddedStore,
  redactUrl,
} from "@phoenix/runtime/db";
import pg from "pg";

/** The databases of an all-in-one homeserver: one per service, plus the embedded bus's. */
export type DatabaseName = "auth" | "delivery" | "queue" | "federation" | "bus";

/** The embedded store's directory inside the data directory. */
export const EMBEDDED_STORE_DIR = join("pglite", "homeserver");

/** Names of the per-service PGlite directories of versions before the shared store. */
const LEGACY_DIRS: readonly DatabaseName[] = ["auth", "delivery", "queue", "federation", "bus"];

/** The data directory holds databases this version does not open. */
export class LegacyDataDirError extends Error {
  override readonly name = "LegacyDataDirError";
}

/**
 * Where the embedded store of `dataDir` lives. A data directory of an earlier version (one PGlite
 * directory per service) is refused rather than silently started empty beside the old data.
 */
export async function embeddedStorePath(dataDir: string): Promise<string> {
  const legacy: string[] = [];
  for (const name of LEGACY_DIRS) {
    const path = join(dataDir, "pglite", name);
    if (
      await stat(path).then(
        (s) => s.isDirectory(),
        () => false,
      )
    )
      legacy.push(path);
  }
  if (legacy.length > 0) {
    throw new LegacyDataDirError(
      `${dataDir} holds the per-service databases of an earlier version (${legacy.join(", ")}); ` +
        "this version keeps them all in one database and does not convert them. Start with a new " +
        "--data-dir, or keep running the earlier version on this one (docs/running.md)",
    );
  }
  return join(dataDir, EMBEDDED_STORE_DIR);
}

/**
 * Postgres settings of the embedded store. PGlite initialises all of its shared buffers at start:
 * Postgres's default of 128 MB made a third of the idle homeserver's memory; 32 MB holds the
 * working set of a small homeserver (reads beyond it come from the OS page cache).
 */
const EMBEDDED_SETTINGS = ["shared_buffers=32MB"];

/** Opens (creating on first start) the embedded store at `path`. */
export async function openEmbeddedStore(path: string): Promise<EmbeddedStore> {
  await mkdir(path, { recursive: true, mode: 0o700 });
  try {
    return await EmbeddedStore.open(path, { postgresqlconf: EMBEDDED_SETTINGS });
  } catch (error) {
    throw new DatabaseOpenError(`cannot open the embedded database in ${path}: ${messageOf(error)}`, {
      cause: error,
    });
  }
}

/** Where the homeserver keeps its databases. */
export type StorageLocation =
  | { kind: "pglite"; dataDir: string }
  | { kind: "postgres"; serverUrl: string; prefix: string };

/**
 * Connection options of one service database: a PGlite directory `<dataDir>/pglite/<name>`, or
 * the database `<prefix><name>` on the Postgres server, created if missing.
 */
export async function serviceDatabase(
  location: StorageLocation,
  name: DatabaseName,
): Promise<DatabaseConnectionOptions> {
  if (location.kind === "pglite")
    return { driver: "pglite", dataDir: join(location.dataDir, "pglite", name) };
  const database = `${location.prefix}${name}`;
  await ensurePostgresDatabase(location.serverUrl, database);
  const url = new URL(location.serverUrl);
  url.pathname = `/${database}`;
  return { driver: "pg", url: url.toString(), applicationName: `homeserver-${name}` };
}

/** Creates `database` on the server of `serverUrl` (connecting to the URL's own database) if missing. */
export async function ensurePostgresDatabase(serverUrl: string, database: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(database)) {
    throw new DatabaseOpenError(`${database} is not a plain lower-case database name`);
  }
  const client = new pg.Client({ connectionString: serverUrl, application_name: "homeserver-setup" });
  client.on("error", () => {}); // a dying idle connection is reported by the failing query
  try {
    await client.connect();
  } catch (error) {
    throw new DatabaseOpenError(`cannot connect to ${redactUrl(serverUrl)}: ${messageOf(error)}`, {
      cause: error,
    });
  }
  try {
    const found = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]);
    if (found.rowCount === 0) {
      // The name is checked above: it cannot break out of the quotes.
      await client.query(`CREATE DATABASE "${database}"`).catch((error: { code?: string }) => {
        // 42P04 duplicate_database, 23505: another process created it at the same moment.
        if (error.code !== "42P04" && error.code !== "23505") throw error;
      });
    }
  } finally {
    await client.end().catch(() => {});
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
