import Database from "better-sqlite3";
import { eq } from "drizzle-orm";
import { type BetterSQLite3Database, drizzle } from "drizzle-orm/better-sqlite3";
import * as schema from "./schema.js";

export type ClientDb = BetterSQLite3Database<typeof schema>;

/** The client's SQLite database (one file per client; `:memory:` for throw-away clients). */
export class ClientStore {
  private constructor(
    private readonly sqlite: Database.Database,
    readonly db: ClientDb,
  ) {}

  /** Opens (and creates) the database at `path`. */
  static open(path: string): ClientStore {
    const sqlite = new Database(path);
    sqlite.pragma("journal_mode = WAL");
    sqlite.pragma("synchronous = FULL");
    sqlite.exec(schema.SCHEMA_SQL);
    return new ClientStore(sqlite, drizzle(sqlite, { schema }));
  }

  /** Runs `fn` in one SQLite transaction (all of a processed message's effects or none). */
  transaction<T>(fn: () => T): T {
    return this.sqlite.transaction(fn)();
  }

  getBytes(key: string): Uint8Array | undefined {
    const row = this.db.select().from(schema.kv).where(eq(schema.kv.key, key)).get();
    return row === undefined ? undefined : new Uint8Array(row.value);
  }

  setBytes(key: string, value: Uint8Array): void {
    const buf = Buffer.from(value);
    this.db
      .insert(schema.kv)
      .values({ key, value: buf })
      .onConflictDoUpdate({ target: schema.kv.key, set: { value: buf } })
      .run();
  }

  deleteKey(key: string): void {
    this.db.delete(schema.kv).where(eq(schema.kv.key, key)).run();
  }

  getJson<T>(key: string): T | undefined {
    const b = this.getBytes(key);
    return b === undefined ? undefined : (JSON.parse(new TextDecoder().decode(b)) as T);
  }

  setJson(key: string, value: unknown): void {
    this.setBytes(key, new TextEncoder().encode(JSON.stringify(value)));
  }

  close(): void {
    this.sqlite.close();
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
