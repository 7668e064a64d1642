import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { outbox } from "../outbox/schema.js";
import { createTestDatabase, type TestDatabase } from "../testing/test-database.js";
import { DatabaseOpenError, MigrationError, openDatabase } from "./open-database.js";
import { blobs, groups } from "./test-fixture/schema.js";
import type { Database } from "./types.js";

const FIXTURE_MIGRATIONS = fileURLToPath(new URL("./test-fixture/migrations", import.meta.url));
/** Runtime-owned migrations: the outbox, the seen-requests table of the replay store, sealed outbox rows. */
const RUNTIME_MIGRATIONS = 3;

async function appliedMigrations(db: Database, table: string): Promise<number> {
  const rows = await db.execute<{ n: number }>(
    sql`SELECT count(*)::int AS n FROM ${sql.identifier("drizzle")}.${sql.identifier(table)}`,
  );
  return rowsOf<{ n: number }>(rows)[0]?.n ?? -1;
}

/** `execute` returns `{ rows }` on both drivers. */
function rowsOf<T>(result: unknown): T[] {
  return (result as { rows: T[] }).rows;
}

async function columnsOf(db: Database, table: string): Promise<string[]> {
  const result = await db.execute(
    sql`SELECT column_name FROM information_schema.columns WHERE table_name = ${table} ORDER BY ordinal_position`,
  );
  return rowsOf<{ column_name: string }>(result).map((row) => row.column_name);
}

/** A copy of the fixture migrations with only the first migration in the journal. */
async function firstMigrationOnly(dir: string): Promise<string> {
  const folder = join(dir, "migrations-v1");
  await cp(FIXTURE_MIGRATIONS, folder, { recursive: true });
  const journalFile = join(folder, "meta", "_journal.json");
  const journal = JSON.parse(await readFile(journalFile, "utf8")) as { entries: unknown[] };
  journal.entries = journal.entries.slice(0, 1);
  await writeFile(journalFile, JSON.stringify(journal));
  return folder;
}

/** A copy of the fixture migrations plus a third migration that fails half-way. */
async function withBrokenMigration(dir: string): Promise<string> {
  const folder = join(dir, "migrations-broken");
  await cp(FIXTURE_MIGRATIONS, folder, { recursive: true });
  await writeFile(
    join(folder, "0002_broken.sql"),
    'CREATE TABLE "half" ("id" integer);\n--> statement-breakpoint\nSELECT * FROM "no_such_table";\n',
  );
  const journalFile = join(folder, "meta", "_journal.json");
  const journal = JSON.parse(await readFile(journalFile, "utf8")) as {
    entries: { idx: number; version: string; when: number; tag: string; breakpoints: boolean }[];
  };
  const last = journal.entries.at(-1);
  if (!last) throw new Error("fixture journal is empty");
  journal.entries.push({ ...last, idx: last.idx + 1, when: last.when + 1000, tag: "0002_broken" });
  await writeFile(journalFile, JSON.stringify(journal));
  return folder;
}

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "runtime-db-test-"));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe("openDatabase on Postgres", () => {
  let testDb: TestDatabase;
  beforeAll(async () => {
    // No migrations yet: each test opens the database itself.
    testDb = await createTestDatabase();
  });
  afterAll(async () => {
    await testDb?.close();
  });

  it("applies the runtime and service migrations, and re-applying them changes nothing", async () => {
    const url = testDb.url!;
    const first = await openDatabase({ driver: "pg", url, migrationsFolder: FIXTURE_MIGRATIONS });
    try {
      await first.db.insert(groups).values({ id: "g1", epoch: 7n });
      await first.db.insert(outbox).values({ id: "m1", subject: "a.b", payload: new Uint8Array([1]) });
    } finally {
      await first.close();
    }
    const second = await openDatabase({ driver: "pg", url, migrationsFolder: FIXTURE_MIGRATIONS });
    try {
      expect(await appliedMigrations(second.db, "__drizzle_migrations")).toBe(2);
      expect(await appliedMigrations(second.db, "__phoenix_runtime_migrations")).toBe(RUNTIME_MIGRATIONS);
      expect(await second.db.select().from(groups)).toEqual([{ id: "g1", epoch: 7n }]);
      expect((await second.db.select().from(outbox)).map((row) => row.id)).toEqual(["m1"]);
    } finally {
      await second.close();
    }
  });

  it("lets many replicas start at once on a fresh database", async () => {
    const fresh = await createTestDatabase();
    try {
      const handles = await Promise.all(
        Array.from({ length: 6 }, () =>
          openDatabase({ driver: "pg", url: fresh.url!, poolMax: 2, migrationsFolder: FIXTURE_MIGRATIONS }),
        ),
      );
      try {
        expect(await appliedMigrations(fresh.db, "__drizzle_migrations")).toBe(2);
        expect(await appliedMigrations(fresh.db, "__phoenix_runtime_migrations")).toBe(RUNTIME_MIGRATIONS);
        expect(await columnsOf(fresh.db, "blobs")).toEqual(["id", "data", "big", "note", "size"]);
      } finally {
        await Promise.all(handles.map((handle) => handle.close()));
      }
    } finally {
      await fresh.close();
    }
  });

  it("applies a migration added in a later release on the next start and keeps the data", async () => {
    const fresh = await createTestDatabase();
    try {
      const v1 = await openDatabase({
        driver: "pg",
        url: fresh.url!,
        migrationsFolder: await firstMigrationOnly(scratch),
      });
      try {
        expect(await columnsOf(v1.db, "blobs")).toEqual(["id", "data", "big"]);
        await v1.db.execute(sql`INSERT INTO blobs (data) VALUES ('\\x01')`);
      } finally {
        await v1.close();
      }
      const v2 = await openDatabase({ driver: "pg", url: fresh.url!, migrationsFolder: FIXTURE_MIGRATIONS });
      try {
        expect(await columnsOf(v2.db, "blobs")).toEqual(["id", "data", "big", "note", "size"]);
        expect((await v2.db.select().from(blobs)).map((row) => row.data)).toEqual([new Uint8Array([1])]);
      } finally {
        await v2.close();
      }
    } finally {
      await fresh.close();
    }
  });

  it("reports a failing migration as MigrationError and rolls it back", async () => {
    const fresh = await createTestDatabase();
    try {
      await expect(
        openDatabase({ driver: "pg", url: fresh.url!, migrationsFolder: await withBrokenMigration(scratch) }),
      ).rejects.toThrow(MigrationError);
      const tables = rowsOf<{ table_name: string }>(
        await fresh.db.execute(
          sql`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`,
        ),
      ).map((row) => row.table_name);
      // Drizzle applies the pending migrations in one transaction: none of them is left behind.
      expect(tables).toEqual([]);
    } finally {
      await fresh.close();
    }
  });

  it("names the server it cannot reach, without the password", async () => {
    const error = await openDatabase({
      driver: "pg",
      url: "postgres://app:hunter2@127.0.0.1:1/nowhere",
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatabaseOpenError);
    expect((error as Error).message).toContain("127.0.0.1:1");
    expect((error as Error).message).not.toContain("hunter2");
  });

  it("tryWithLock excludes every other handle on the database until fn returns", async () => {
    const other = await openDatabase({ driver: "pg", url: testDb.url! });
    try {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      let entered!: () => void;
      const inside = new Promise<void>((resolve) => {
        entered = resolve;
      });
      const holder = testDb.tryWithLock(42n, async (db) => {
        await db.execute(sql`SELECT 1`);
        entered();
        await gate;
        return "done";
      });
      await inside;
      expect(await other.tryWithLock(42n, async () => "other")).toEqual({ acquired: false });
      expect(await testDb.tryWithLock(42n, async () => "same handle")).toEqual({ acquired: false });
      expect(await other.tryWithLock(43n, async () => "other key")).toEqual({
        acquired: true,
        value: "other key",
      });
      release();
      expect(await holder).toEqual({ acquired: true, value: "done" });
      expect(await other.tryWithLock(42n, async () => "after")).toEqual({ acquired: true, value: "after" });
    } finally {
      await other.close();
    }
  });

  it("tryWithLock releases the lock when fn throws", async () => {
    await expect(
      testDb.tryWithLock(44n, async () => {
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(await testDb.tryWithLock(44n, async () => 1)).toEqual({ acquired: true, value: 1 });
  });
});

describe("openDatabase on PGlite", () => {
  it("keeps data on disk, re-applies migrations as a no-op, and upgrades on a later start", async () => {
    const dataDir = join(scratch, "pglite-data");
    const v1 = await openDatabase({
      driver: "pglite",
      dataDir,
      migrationsFolder: await firstMigrationOnly(scratch),
    });
    try {
      expect(await columnsOf(v1.db, "blobs")).toEqual(["id", "data", "big"]);
      await v1.db.insert(groups).values({ id: "g1", epoch: 3n });
    } finally {
      await v1.close();
    }
    for (let start = 0; start < 2; start++) {
      const v2 = await openDatabase({ driver: "pglite", dataDir, migrationsFolder: FIXTURE_MIGRATIONS });
      try {
        expect(await appliedMigrations(v2.db, "__drizzle_migrations")).toBe(2);
        expect(await appliedMigrations(v2.db, "__phoenix_runtime_migrations")).toBe(RUNTIME_MIGRATIONS);
        expect(await columnsOf(v2.db, "blobs")).toEqual(["id", "data", "big", "note", "size"]);
        expect(await v2.db.select().from(groups)).toEqual([{ id: "g1", epoch: 3n }]);
      } finally {
        await v2.close();
      }
    }
  });

  it("tryWithLock excludes concurrent callers in the process", async () => {
    const handle = await openDatabase({ driver: "pglite" });
    try {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const holder = handle.tryWithLock(1n, async () => {
        await gate;
        return "first";
      });
      expect(await handle.tryWithLock(1n, async () => "second")).toEqual({ acquired: false });
      release();
      expect(await holder).toEqual({ acquired: true, value: "first" });
      expect(await handle.tryWithLock(1n, async () => "third")).toEqual({ acquired: true, value: "third" });
    } finally {
      await handle.close();
    }
  });
});
