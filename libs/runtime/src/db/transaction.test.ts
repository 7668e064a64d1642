import { fileURLToPath } from "node:url";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, createTestPglite, type TestDatabase } from "../testing/test-database.js";
import { groups } from "./test-fixture/schema.js";
import { sqlState, transaction } from "./transaction.js";

const migrationsFolder = fileURLToPath(new URL("./test-fixture/migrations", import.meta.url));

function pgError(code: string): Error {
  return Object.assign(new Error(`simulated ${code}`), { code });
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe.each([
  { driver: "pg", open: () => createTestDatabase({ migrationsFolder }) },
  { driver: "pglite", open: () => createTestPglite({ migrationsFolder }) },
])("transaction on $driver", ({ driver, open }) => {
  let testDb: TestDatabase;
  beforeAll(async () => {
    testDb = await open();
  });
  afterAll(async () => {
    await testDb?.close();
  });
  beforeEach(async () => {
    await testDb.db.delete(groups);
  });

  it("commits on success and leaves nothing behind when fn throws", async () => {
    await transaction(testDb.db, async (tx) => {
      await tx.insert(groups).values({ id: "kept" });
    });
    await expect(
      transaction(testDb.db, async (tx) => {
        await tx.insert(groups).values({ id: "discarded" });
        throw new Error("validation failed");
      }),
    ).rejects.toThrow("validation failed");
    expect((await testDb.db.select().from(groups)).map((g) => g.id)).toEqual(["kept"]);
  });

  it("re-runs fn after a serialization failure or deadlock, up to maxAttempts", async () => {
    let calls = 0;
    const value = await transaction(testDb.db, async (tx) => {
      calls++;
      await tx.insert(groups).values({ id: `attempt-${calls}` });
      if (calls === 1) throw pgError("40001");
      if (calls === 2) throw new Error("wrapped", { cause: pgError("40P01") });
      return "ok";
    });
    expect(value).toBe("ok");
    expect(calls).toBe(3);
    // Only the attempt that committed left its row.
    expect((await testDb.db.select().from(groups)).map((g) => g.id)).toEqual(["attempt-3"]);

    calls = 0;
    const gaveUp = await transaction(
      testDb.db,
      async () => {
        calls++;
        throw pgError("40001");
      },
      { maxAttempts: 3 },
    ).catch((error: unknown) => error);
    expect(sqlState(gaveUp)).toBe("40001");
    expect(calls).toBe(3);

    calls = 0;
    await expect(
      transaction(testDb.db, async () => {
        calls++;
        throw pgError("23505");
      }),
    ).rejects.toThrow("simulated 23505");
    expect(calls).toBe(1);
  });

  if (driver === "pg") {
    it("lets conflicting serializable transactions all succeed by retrying", async () => {
      await testDb.db.insert(groups).values({ id: "g" });
      await Promise.all(
        Array.from({ length: 6 }, () =>
          transaction(
            testDb.db,
            async (tx) => {
              const [group] = await tx.select().from(groups).where(eq(groups.id, "g"));
              await tx
                .update(groups)
                .set({ epoch: (group?.epoch ?? 0n) + 1n })
                .where(eq(groups.id, "g"));
            },
            { isolationLevel: "serializable", maxAttempts: 20 },
          ),
        ),
      );
      expect(await testDb.db.select().from(groups)).toEqual([{ id: "g", epoch: 6n }]);
    });

    it("runs transactions of one process concurrently on separate connections", async () => {
      const gate = deferred();
      const firstInside = deferred();
      const log: string[] = [];
      const first = transaction(testDb.db, async (tx) => {
        await tx.insert(groups).values({ id: "uncommitted" });
        log.push("first inside");
        firstInside.resolve();
        await gate.promise;
      });
      await firstInside.promise;
      const seen = await transaction(testDb.db, async (tx) => {
        log.push("second inside");
        return (await tx.select().from(groups)).length;
      });
      // The second ran while the first was open and did not see its uncommitted row.
      expect(seen).toBe(0);
      gate.resolve();
      await first;
      expect(log).toEqual(["first inside", "second inside"]);
    });
  } else {
    it("runs transactions of one process one after the other (PGlite has a single connection)", async () => {
      const gate = deferred();
      const firstInside = deferred();
      const log: string[] = [];
      const first = transaction(testDb.db, async (tx) => {
        await tx.insert(groups).values({ id: "first" });
        log.push("first inside");
        firstInside.resolve();
        await gate.promise;
        log.push("first done");
      });
      await firstInside.promise;
      const second = transaction(testDb.db, async (tx) => {
        log.push("second inside");
        return (await tx.select().from(groups)).map((g) => g.id);
      });
      const outside = testDb.db.execute(sql`SELECT 1`).then(() => log.push("plain query"));
      // Let the event loop run: if PGlite interleaved, the second transaction would start now.
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(log).toEqual(["first inside"]);
      gate.resolve();
      expect(await second).toEqual(["first"]);
      await Promise.all([first, outside]);
      expect(log.slice(0, 2)).toEqual(["first inside", "first done"]);
      expect(log.slice(2).sort()).toEqual(["plain query", "second inside"]);
    });
  }
});
