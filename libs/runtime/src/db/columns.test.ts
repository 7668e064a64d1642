import { fileURLToPath } from "node:url";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, createTestPglite, type TestDatabase } from "../testing/test-database.js";
import { blobs } from "./test-fixture/schema.js";

const migrationsFolder = fileURLToPath(new URL("./test-fixture/migrations", import.meta.url));

describe.each([
  { driver: "pg", open: () => createTestDatabase({ migrationsFolder }) },
  { driver: "pglite", open: () => createTestPglite({ migrationsFolder }) },
])("columns on $driver", ({ open }) => {
  let testDb: TestDatabase;
  beforeAll(async () => {
    testDb = await open();
  });
  afterAll(async () => {
    await testDb?.close();
  });

  it("round-trips bytea as plain Uint8Array, byte for byte", async () => {
    const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const large = new Uint8Array(1 << 20).map((_, i) => (i * 31) & 0xff);
    // A view into a larger buffer: only the viewed bytes may be stored.
    const view = new Uint8Array([9, 9, 1, 2, 3, 9]).subarray(2, 5);
    const inserted = await testDb.db
      .insert(blobs)
      .values([{ data: new Uint8Array() }, { data: allBytes }, { data: large }, { data: view }])
      .returning({ id: blobs.id });
    const read = await Promise.all(
      inserted.map(async ({ id }) => (await testDb.db.select().from(blobs).where(eq(blobs.id, id)))[0]?.data),
    );
    const [empty, all, big, viewed] = read;
    expect(empty).toEqual(new Uint8Array());
    expect(all).toEqual(allBytes);
    // Deep equality over a MiB is slow in the matcher; compare the bytes directly.
    expect(big?.length).toBe(large.length);
    expect(Buffer.compare(Buffer.from(big ?? []), Buffer.from(large))).toBe(0);
    expect(viewed).toEqual(new Uint8Array([1, 2, 3]));
    for (const data of read) {
      expect(Object.getPrototypeOf(data)).toBe(Uint8Array.prototype);
      expect(Buffer.isBuffer(data)).toBe(false);
    }
  });

  it("round-trips int8 as bigint over the whole range", async () => {
    const values = [9223372036854775807n, -9223372036854775808n, 2n ** 53n + 1n, 0n, null];
    const inserted = await testDb.db
      .insert(blobs)
      .values(values.map((big) => ({ data: new Uint8Array([1]), big })))
      .returning({ id: blobs.id, big: blobs.big });
    expect(inserted.map((row) => row.big)).toEqual(values);
    const read = await Promise.all(
      inserted.map(async ({ id }) => (await testDb.db.select().from(blobs).where(eq(blobs.id, id)))[0]?.big),
    );
    expect(read).toEqual(values);
  });
});
