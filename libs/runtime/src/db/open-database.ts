import { fileURLToPath } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import { drizzle as drizzlePg } from "drizzle-orm/node-postgres";
import { migrate as migratePg } from "drizzle-orm/node-postgres/migrator";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import pg from "pg";
import type { EmbeddedStore } from "./embedded-store.js";
import type { Database } from "./types.js";

/** Deployments: a node-postgres pool on a real Postgres server. */
export interface PgConnectionOptions {
  driver: "pg";
  /** `postgres://user@host:port/database` */
  url: string;
  /** Pool size (default 10). The outbox relay and migrations each borrow one connection briefly. */
  poolMax?: number;
  /** Shown in `pg_stat_activity` (e.g. the service name), for operators and tests. */
  applicationName?: string;
}

/** Embedded mode: PGlite (Postgres compiled to WASM) inside this process. */
export interface PgliteConnectionOptions {
  driver: "pglite";
  /** Directory holding the database; created on first start. Absent: in memory, gone on close. */
  dataDir?: string;
  /** In-memory only: start from a `PGlite.dumpDataDir()` tarball instead of running initdb. */
  loadDataDir?: Blob;
  /**
   * A namespace of a shared embedded store instead of an instance of its own (`dataDir` and
   * `loadDataDir` are then unused): the service's tables, its runtime tables and its migration
   * journals live in that namespace. Closing the handle leaves the store open.
   */
  shared?: { store: EmbeddedStore; namespace: string };
}

export type DatabaseConnectionOptions = PgConnectionOptions | PgliteConnectionOptions;

export type OpenDatabaseOptions<TSchema extends Record<string, unknown> = Record<string, never>> =
  DatabaseConnectionOptions & {
    /** The service's drizzle-kit migrations folder (holds `meta/_journal.json`); applied at open. */
    migrationsFolder?: string;
    /** The service's drizzle schema, for the relational query API (`db.query.*`). */
    schema?: TSchema;
    /** Errors of idle pooled connections (e.g. the server restarted); the pool drops them itself. */
    onPoolError?: (error: Error) => void;
  };

export type LockResult<T> = { acquired: false } | { acquired: true; value: T };

/** A connection pool's use at one moment (operational metrics). */
export interface PoolStats {
  /** Connections open, idle or checked out. */
  total: number;
  idle: number;
  /** Callers waiting for a connection because all `max` are checked out. */
  waiting: number;
  /** The pool's size limit. */
  max: number;
}

/** An open database: the drizzle handle plus what the runtime needs around it. */
export interface DatabaseHandle<TSchema extends Record<string, unknown> = Record<string, never>> {
  readonly db: Database<TSchema>;
  readonly driver: DatabaseConnectionOptions["driver"];
  /**
   * Runs `fn` while holding an exclusive lock named by `key`, or returns `{ acquired: false }` at
   * once when someone else holds it. On pg this is a session advisory lock on a dedicated pooled
   * connection (`fn` gets a `Database` bound to that connection), so it excludes every process
   * using the same database and is released by Postgres if this process dies. On PGlite (one
   * process owns the data) it is an in-process lock and `fn` gets the shared handle. `lost` aborts
   * when the lock can no longer be trusted (the connection died, the handle closed): stop acting
   * on what was read under it.
   */
  tryWithLock<T>(key: bigint, fn: (db: Database, lost: AbortSignal) => Promise<T>): Promise<LockResult<T>>;
  /** Closes the pool / PGlite instance. Call once, after everything using `db` has stopped. */
  close(): Promise<void>;
  /** The pool's use now (pg only: PGlite has no pool). */
  poolStats?(): PoolStats;
}

/** The database could not be reached or created. */
export class DatabaseOpenError extends Error {
  override readonly name = "DatabaseOpenError";
}

/**
 * A connection to the database could not be had (the server is down, restarting or out of
 * reach) — for a query of a running service, where `DatabaseOpenError` is for the start.
 */
export class DatabaseUnavailableError extends Error {
  override readonly name = "DatabaseUnavailableError";
}

/** A migration failed; the database is left at the last migration that committed. */
export class MigrationError extends Error {
  override readonly name = "MigrationError";
}

/**
 * Migrations owned by libs/runtime (the outbox table), applied to every service database before
 * the service's own. They keep their own journal table so they never mix with a service's.
 */
const RUNTIME_MIGRATIONS = {
  migrationsFolder: fileURLToPath(new URL("../../migrations/runtime", import.meta.url)),
  migrationsSchema: "drizzle",
  migrationsTable: "__phoenix_runtime_migrations",
};

/** Advisory lock key serialising migrations of replicas that start at once ("phnxmigr"). */
const MIGRATION_LOCK_KEY = 0x70686e786d696772n;

/**
 * Opens the database, applies the runtime's and then the service's migrations, and returns the
 * handle. On pg, replicas starting together take turns under an advisory lock, so exactly one
 * applies each migration and the others find it done.
 */
export async function openDatabase<TSchema extends Record<string, unknown> = Record<string, never>>(
  options: OpenDatabaseOptions<TSchema>,
): Promise<DatabaseHandle<TSchema>> {
  return options.driver === "pg" ? openPg(options) : openPglite(options);
}

async function openPg<TSchema extends Record<string, unknown>>(
  options: PgConnectionOptions & OpenDatabaseOptions<TSchema>,
): Promise<DatabaseHandle<TSchema>> {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolMax ?? 10,
    ...(options.applicationName ? { application_name: options.applicationName } : {}),
  });
  // Without a listener an idle connection dying (server restart) would crash the process.
  pool.on("error", (error) => options.onPoolError?.(error));
  // Nor may a checked-out one: pg-pool listens only while a client is idle, and a connection
  // that dies while its holder awaits something else (inside a transaction) emits "error" on
  // the client with nobody listening. The holder's next query fails and release drops the client.
  pool.on("connect", (client) => client.on("error", (error) => options.onPoolError?.(error)));
  // A connection that cannot be had says which dependency is missing (the socket error alone
  // does not), so a request failing on it is answered UNAVAILABLE naming the database. pg-pool's
  // own queries call `connect` with a callback, transactions without: both forms are wrapped.
  const unavailable = (error: Error): DatabaseUnavailableError =>
    new DatabaseUnavailableError(`cannot connect to ${redactUrl(options.url)}: ${messageOf(error)}`, {
      cause: error,
    });
  const connect = pool.connect.bind(pool) as (
    callback?: PoolConnectCallback,
  ) => Promise<pg.PoolClient> | undefined;
  pool.connect = ((callback?: PoolConnectCallback) => {
    if (callback) {
      connect((error, client, done) => callback(error ? unavailable(error) : error, client, done));
      return undefined;
    }
    return (connect() as Promise<pg.PoolClient>).catch((error: Error) => {
      throw unavailable(error);
    });
  }) as typeof pool.connect;
  const db = drizzlePg({ client: pool, ...(options.schema ? { schema: options.schema } : {}) });

  async function withClient<T>(
    fn: (client: pg.PoolClient, lost: AbortSignal, markBroken: (error: unknown) => void) => Promise<T>,
  ): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (error) {
      throw new DatabaseOpenError(`cannot connect to ${redactUrl(options.url)}: ${messageOf(error)}`, {
        cause: error,
      });
    }
    // A checked-out connection that dies emits "error" on the client (the failing query reports
    // it too); a session lock held on it is gone from then on.
    const lost = new AbortController();
    const onLost = (error?: Error): void => lost.abort(error ?? new Error("connection ended"));
    client.on("error", onLost);
    client.on("end", onLost);
    let broken: Error | undefined;
    const markBroken = (error: unknown): void => {
      broken ??= error instanceof Error ? error : new Error(String(error));
    };
    try {
      return await fn(client, lost.signal, markBroken);
    } finally {
      // Releasing with an error destroys the connection, and with it any session lock it held.
      client.release(broken);
      client.removeListener("error", onLost);
      client.removeListener("end", onLost);
    }
  }

  /**
   * Runs `body` holding the session advisory lock `key` on `client` (`wait`: block until it is
   * free; else give up at once). If the lock cannot be released the connection is destroyed, so
   * a lock can never stay behind on a pooled connection.
   */
  async function underSessionLock<T>(
    client: pg.PoolClient,
    markBroken: (error: unknown) => void,
    key: bigint,
    wait: boolean,
    body: () => Promise<T>,
  ): Promise<LockResult<T>> {
    const lockSql = wait
      ? "SELECT pg_advisory_lock($1::bigint), true AS locked"
      : "SELECT pg_try_advisory_lock($1::bigint) AS locked";
    let locked: boolean;
    try {
      const result = await client.query<{ locked: boolean }>(lockSql, [key.toString()]);
      locked = result.rows[0]?.locked === true;
    } catch (error) {
      markBroken(error);
      throw error;
    }
    if (!locked) return { acquired: false };
    const unlock = (): Promise<unknown> =>
      client.query("SELECT pg_advisory_unlock($1::bigint)", [key.toString()]);
    let value: T;
    try {
      value = await body();
    } catch (error) {
      // The body's error is the one to report; a failed unlock only condemns the connection.
      await unlock().catch(markBroken);
      throw error;
    }
    try {
      await unlock();
    } catch (error) {
      markBroken(error);
      throw error;
    }
    return { acquired: true, value };
  }

  async function tryWithLock<T>(
    key: bigint,
    fn: (db: Database, lost: AbortSignal) => Promise<T>,
  ): Promise<LockResult<T>> {
    return withClient((client, lost, markBroken) =>
      underSessionLock(client, markBroken, key, false, () => fn(drizzlePg({ client }), lost)),
    );
  }

  try {
    await withClient((client, _lost, markBroken) =>
      underSessionLock(client, markBroken, MIGRATION_LOCK_KEY, true, () =>
        runMigrations(options.migrationsFolder, (config) => migratePg(drizzlePg({ client }), config)),
      ),
    );
  } catch (error) {
    await pool.end().catch(() => {});
    throw error;
  }

  return {
    db,
    driver: "pg",
    tryWithLock,
    close: () => pool.end(),
    poolStats: () => ({
      total: pool.totalCount,
      idle: pool.idleCount,
      waiting: pool.waitingCount,
      max: options.poolMax ?? 10,
    }),
  };
}

type PoolConnectCallback = (
  error: Error | undefined,
  client: pg.PoolClient | undefined,
  done: (release?: unknown) => void,
) => void;

async function openPglite<TSchema extends Record<string, unknown>>(
  options: PgliteConnectionOptions & OpenDatabaseOptions<TSchema>,
): Promise<DatabaseHandle<TSchema>> {
  const { client, closeClient } = options.shared
    ? { client: options.shared.store.view(options.shared.namespace), closeClient: async () => {} }
    : await createPglite(options);
  // drizzle's PGlite driver only calls query, exec and transaction: a store's view has them.
  const db = drizzlePglite({
    client: client as PGlite,
    ...(options.schema ? { schema: options.schema } : {}),
  });
  try {
    // In a shared store the journals live in the namespace, beside the tables they describe.
    const journalSchema = options.shared?.namespace;
    await runMigrations(options.migrationsFolder, (config) =>
      migratePglite(db, journalSchema ? { ...config, migrationsSchema: journalSchema } : config),
    );
  } catch (error) {
    await closeClient().catch(() => {});
    throw error;
  }

  // PGlite is one session: a Postgres advisory lock would be re-entrant for every caller in this
  // process, so exclusion between callers is done here instead.
  const held = new Set<bigint>();
  const plain: Database = drizzlePglite({ client: client as PGlite });
  const closed = new AbortController();
  async function tryWithLock<T>(
    key: bigint,
    fn: (db: Database, lost: AbortSignal) => Promise<T>,
  ): Promise<LockResult<T>> {
    if (held.has(key)) return { acquired: false };
    held.add(key);
    try {
      return { acquired: true, value: await fn(plain, closed.signal) };
    } finally {
      held.delete(key);
    }
  }

  return {
    db,
    driver: "pglite",
    tryWithLock,
    close: () => {
      closed.abort(new Error("database closed"));
      return closeClient();
    },
  };
}

async function createPglite(
  options: PgliteConnectionOptions,
): Promise<{ client: PGlite; closeClient: () => Promise<void> }> {
  try {
    const client = await PGlite.create({
      ...(options.dataDir ? { dataDir: options.dataDir } : {}),
      ...(options.loadDataDir ? { loadDataDir: options.loadDataDir } : {}),
    });
    return { client, closeClient: () => client.close() };
  } catch (error) {
    const where = options.dataDir ?? "memory";
    throw new DatabaseOpenError(`cannot open PGlite database in ${where}: ${messageOf(error)}`, {
      cause: error,
    });
  }
}

interface MigrationConfig {
  migrationsFolder: string;
  migrationsSchema?: string;
  migrationsTable?: string;
}

async function runMigrations(
  serviceFolder: string | undefined,
  migrate: (config: MigrationConfig) => Promise<void>,
): Promise<void> {
  const folders: MigrationConfig[] = [RUNTIME_MIGRATIONS];
  if (serviceFolder) folders.push({ migrationsFolder: serviceFolder });
  for (const config of folders) {
    try {
      await migrate(config);
    } catch (error) {
      throw new MigrationError(`migrations in ${config.migrationsFolder} failed: ${messageOf(error)}`, {
        cause: error,
      });
    }
  }
}

function messageOf(error: unknown): string {
  // drizzle wraps driver errors ("Failed query: …"); the innermost cause names the problem.
  let current = error;
  for (let depth = 0; depth < 5 && current instanceof Error && current.cause instanceof Error; depth++) {
    current = current.cause;
  }
  return current instanceof Error ? current.message : String(current);
}

/** The URL without its password, for error messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "<unparseable database url>";
  }
}
