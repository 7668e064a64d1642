import { closeSync, fsyncSync, openSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import Database from "better-sqlite3";
import { eq, sql } from "drizzle-orm";
import { type BetterSQLite3Database, drizzle } from "drizzle-orm/better-sqlite3";
import * as schema from "./schema.js";

export type ClientDb = BetterSQLite3Database<typeof schema>;

/**
 * The client's SQLite database (one file per client; `:memory:` for throw-away clients).
 *
 * Durability is that of WAL with `synchronous = FULL` — a commit is on disk before anything that
 * follows from it leaves the client — without blocking the event loop on every commit: the
 * connection runs `synchronous = NORMAL` (a commit appends to the WAL file; checkpoints sync as
 * in FULL) and {@link durable} syncs the WAL file, FULL's one extra step, on libuv's thread pool.
 * The client awaits it before every request it sends (an acknowledgement of queue messages, a
 * message encrypted with the MLS state the commit saved) and before an operation returns. A
 * power loss can then only roll back commits nobody outside saw; a commit that could be rolled
 * back after its effects were sent would lose acknowledged messages or reuse MLS ratchet keys.
 */
export class ClientStore {
  /**
   * Small values (queue positions) written with the next transaction rather than on their own:
   * a queue message's new position commits together with the message's effects. Reads see them.
   */
  private readonly pending = new Map<string, Uint8Array>();
  /** Rows changed by this connection (SQLite's total_changes) that the last WAL sync covers. */
  private syncedChanges = 0;
  private syncing: Promise<void> | undefined;
  /** The WAL file, once synced. */
  private wal: FileHandle | undefined;
  private readonly totalChanges: Database.Statement<[], number>;
  /** The kv reads and writes every queue message makes, prepared once. */
  private readonly kvGet;
  private readonly kvSet;

  private constructor(
    private readonly sqlite: Database.Database,
    readonly db: ClientDb,
    /** The database file (absolute), undefined for `:memory:`. */
    private readonly path: string | undefined,
  ) {
    this.totalChanges = sqlite.prepare<[], number>("SELECT total_changes()").pluck();
    this.kvGet = db
      .select()
      .from(schema.kv)
      .where(eq(schema.kv.key, sql.placeholder("key")))
      .prepare();
    this.kvSet = db
      .insert(schema.kv)
      .values({ key: sql.placeholder("key"), value: sql.placeholder("value") })
      .onConflictDoUpdate({ target: schema.kv.key, set: { value: sql`excluded.value` } })
      .prepare();
  }

  /** Opens (and creates) the database at `path`. */
  static open(path: string): ClientStore {
    const sqlite = new Database(path);
    sqlite.pragma("journal_mode = WAL");
    sqlite.pragma("synchronous = NORMAL");
    sqlite.exec(schema.SCHEMA_SQL);
    // Stores made by an older client lack the columns added since.
    for (const [table, column, definition] of schema.ADDED_COLUMNS) {
      const columns = sqlite.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[];
      if (!columns.some((c) => c.name === column))
        sqlite.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${definition}`);
    }
    return new ClientStore(
      sqlite,
      drizzle(sqlite, { schema }),
      sqlite.memory ? undefined : resolve(sqlite.name),
    );
  }

  /**
   * Resolves once every commit made so far is on disk (syncs the WAL file, and its directory when
   * the file is new); concurrent callers share one sync. Rejects when the sync fails.
   */
  async durable(): Promise<void> {
    if (this.path === undefined) return;
    for (;;) {
      const changes = this.totalChanges.get() ?? 0;
      if (changes <= this.syncedChanges) return;
      if (this.syncing === undefined) {
        this.syncing = this.syncWal(changes).finally(() => {
          this.syncing = undefined;
        });
      }
      await this.syncing;
    }
  }

  private async syncWal(changes: number): Promise<void> {
    // The WAL file stays (same inode) while this connection is open — SQLite removes it only when
    // the last connection closes — so its handle is kept once opened.
    if (this.wal === undefined) {
      const wal = `${this.path}-wal`;
      const file = await open(wal, "r+").catch((error: NodeJS.ErrnoException) => {
        // No WAL file: nothing was committed through it since it was checkpointed (synced) away.
        if (error.code === "ENOENT") return undefined;
        throw error;
      });
      if (file === undefined) {
        this.syncedChanges = Math.max(this.syncedChanges, changes);
        return;
      }
      try {
        await file.sync();
        // A new WAL file's directory entry must reach the disk too (SQLite's FULL does the same).
        await syncDirectory(dirname(wal));
      } catch (error) {
        await file.close();
        throw error;
      }
      this.wal = file;
    } else {
      await this.wal.sync();
    }
    this.syncedChanges = Math.max(this.syncedChanges, changes);
  }

  /**
   * Runs `fn` in one SQLite transaction (all of a processed message's effects or none); the
   * values {@link setBytesWithNextCommit} holds are written in it too.
   */
  transaction<T>(fn: () => T): T {
    if (this.sqlite.inTransaction || this.pending.size === 0) return this.sqlite.transaction(fn)();
    const writes = [...this.pending];
    const out = this.sqlite.transaction(() => {
      for (const [key, value] of writes) this.writeBytes(key, value);
      return fn();
    })();
    // Only after the commit: a rolled-back transaction leaves them pending.
    for (const [key, value] of writes) if (this.pending.get(key) === value) this.pending.delete(key);
    return out;
  }

  /**
   * Sets `key` to `value` in the next transaction (or {@link flushPending}), so that it commits
   * atomically with what that transaction stores; until then reads of `key` see `value`.
   */
  setBytesWithNextCommit(key: string, value: Uint8Array): void {
    this.pending.set(key, value);
  }

  /** Commits the values {@link setBytesWithNextCommit} still holds, on their own. */
  flushPending(): void {
    if (this.pending.size > 0) this.transaction(() => undefined);
  }

  getBytes(key: string): Uint8Array | undefined {
    const pending = this.pending.get(key);
    if (pending !== undefined) return pending;
    const row = this.kvGet.get({ key });
    return row === undefined ? undefined : new Uint8Array(row.value);
  }

  setBytes(key: string, value: Uint8Array): void {
    this.pending.delete(key);
    this.writeBytes(key, value);
  }

  private writeBytes(key: string, value: Uint8Array): void {
    this.kvSet.run({ key, value: Buffer.from(value) });
  }

  deleteKey(key: string): void {
    this.pending.delete(key);
    this.db.delete(schema.kv).where(eq(schema.kv.key, key)).run();
  }

  getJson<T>(key: string): T | undefined {
    const b = this.getBytes(key);
    return b === undefined ? undefined : (JSON.parse(new TextDecoder().decode(b)) as T);
  }

  setJson(key: string, value: unknown): void {
    this.setBytes(key, new TextEncoder().encode(JSON.stringify(value)));
  }

  /** {@link setJson} with the next transaction (see {@link setBytesWithNextCommit}). */
  setJsonWithNextCommit(key: string, value: unknown): void {
    this.setBytesWithNextCommit(key, new TextEncoder().encode(JSON.stringify(value)));
  }

  /** Closes the database, first syncing what {@link durable} has not yet. */
  close(): void {
    if (this.path !== undefined && (this.totalChanges.get() ?? 0) > this.syncedChanges) {
      let fd: number | undefined;
      try {
        fd = openSync(`${this.path}-wal`, "r+");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      }
      if (fd !== undefined) {
        try {
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        syncDirectorySync(dirname(this.path));
      }
    }
    this.wal?.close().catch(() => undefined);
    this.wal = undefined;
    this.sqlite.close();
  }
}

/** Syncs a directory's entries (a new WAL file); a platform that cannot open directories has nothing to do. */
async function syncDirectory(dir: string): Promise<void> {
  if (process.platform === "win32") return;
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function syncDirectorySync(dir: string): void {
  if (process.platform === "win32") return;
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** A Buffer column value as a plain Uint8Array. */
export function u8(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** A Uint8Array as a Buffer for a blob column. */
export function buf(b: Uint8Array): Buffer {
  return Buffer.from(b);
}
