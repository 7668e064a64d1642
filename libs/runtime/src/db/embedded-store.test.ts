import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { outbox } from "../outbox/schema.js";
import { EmbeddedStore, EmbeddedStoreError } from "./embedded-store.js";
import { type DatabaseHandle, openDatabase } from "./open-database.js";
import { groups } from "./test-fixture/schema.js";

const FIXTURE_MIGRATIONS = fileURLToPath(new URL("./test-fixture/migrations", import.meta.url));

function open(store: EmbeddedStore, namespace: string): Promise<DatabaseHandle> {
  return openDatabase({
    driver: "pglite",
    shared: { store, namespace },
    migrationsFolder: FIXTURE_MIGRATIONS,
  });
}

describe("EmbeddedStore: several services' databases in one PGlite instance", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "embedded-store-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("keeps same-named tables and the runtime's outbox apart per namespace, across a reopen", async () => {
    const path = join(dir, "store");
    const store = await EmbeddedStore.open(path);
    const [a, b] = await Promise.all([open(store, "alpha"), open(store, "beta")]);
    // Interleaved writes of both namespaces, one of them in a transaction that rolls back.
    await Promise.all([
      a.db.insert(groups).values({ id: "g", epoch: 1n }),
      b.db.insert(groups).values({ id: "g", epoch: 2n }),
      a.db.insert(outbox).values({ id: "m1", subject: "s.a", payload: new Uint8Array([1]) }),
      b.db
        .transaction(async (tx) => {
          await tx.update(groups).set({ epoch: 99n }).where(eq(groups.id, "g"));
          throw new Error("roll back");
        })
        .catch(() => undefined),
    ]);
    expect(await a.db.select().from(groups)).toEqual([{ id: "g", epoch: 1n }]);
    expect(await b.db.select().from(groups)).toEqual([{ id: "g", epoch: 2n }]);
    expect((await a.db.select().from(outbox)).map((row) => row.id)).toEqual(["m1"]);
    expect(await b.db.select().from(outbox)).toEqual([]);
    await a.close();
    await b.close();
    await store.close();
    // One PGlite directory, nothing per namespace.
    expect(await readdir(dir)).toEqual(["store"]);

    const reopened = await EmbeddedStore.open(path);
    const a2 = await open(reopened, "alpha");
    expect(await a2.db.select().from(groups)).toEqual([{ id: "g", epoch: 1n }]);
    // The migrations were recorded in the namespace and are not applied again.
    const journal = await a2.db.execute(sql`SELECT count(*)::int AS n FROM alpha.__drizzle_migrations`);
    expect((journal as unknown as { rows: { n: number }[] }).rows[0]?.n).toBe(2);
    await a2.close();
    await reopened.close();
  }, 120_000);

  it("refuses a namespace that is not a plain schema name", async () => {
    const store = await EmbeddedStore.open();
    try {
      expect(() => store.view('x"; DROP')).toThrow(EmbeddedStoreError);
    } finally {
      await store.close();
    }
  }, 60_000);
});
