import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase } from "../db/open-database.js";
import { ResourceExhaustedError } from "../errors/rpc-errors.js";
import { createTestDatabase, createTestPglite, type TestDatabase } from "../testing/test-database.js";
import { NamedRateLimit } from "./named-rate-limit.js";
import { SharedRateLimits, SharedRateLimitsError } from "./shared-rate-limits.js";
import { rateLimitBuckets } from "./shared-schema.js";

const drivers: { name: string; open: () => Promise<TestDatabase> }[] = [
  { name: "pg", open: () => createTestDatabase() },
  { name: "pglite", open: () => createTestPglite() },
];

const MINUTE = 60_000;
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (closers.length > 0) await closers.pop()?.();
});

async function opened(open: () => Promise<TestDatabase>): Promise<TestDatabase> {
  const db = await open();
  closers.push(() => db.close());
  return db;
}

describe.each(drivers)("SharedRateLimits on $name", ({ open }) => {
  it("refuses past the capacity with the wait, refills with time, keys separately", async () => {
    const db = await opened(open);
    const store = await SharedRateLimits.open(db.db);
    const t = 1_000_000;
    expect(await store.take("L", 2, MINUTE, "a", t)).toBe(0);
    expect(await store.take("L", 2, MINUTE, "a", t)).toBe(0);
    expect(await store.take("L", 2, MINUTE, "a", t)).toBe(30_000);
    expect(await store.take("L", 2, MINUTE, "b", t)).toBe(0);
    expect(await store.take("OTHER", 2, MINUTE, "a", t)).toBe(0);
    expect(await store.take("L", 2, MINUTE, "a", t + 30_000)).toBe(0);
    expect(await store.take("L", 2, MINUTE, "a", t + 30_000)).toBeGreaterThan(0);
  });

  it("stores only keyed hashes of the keys and sweeps refilled buckets", async () => {
    const db = await opened(open);
    const store = await SharedRateLimits.open(db.db, { secret: randomBytes(32) });
    const key = "203.0.113.77";
    await store.take("L", 3, MINUTE, key, 0);
    await store.take("L", 3, MINUTE, new TextEncoder().encode("user-5f1c"), 0);
    const rows = await db.db.select().from(rateLimitBuckets);
    expect(rows).toHaveLength(2);
    const dump = Buffer.concat(rows.map((r) => Buffer.from(r.keyHash))).toString("latin1");
    expect(dump).not.toContain(key);
    expect(dump).not.toContain("user-5f1c");
    // One token used of three refills in a third of the period: not yet gone before, gone after.
    expect(await store.sweep(20_000 - 1)).toBe(0);
    expect(await store.sweep(20_000)).toBe(2);
    expect(await db.db.select().from(rateLimitBuckets)).toHaveLength(0);
  });

  it("NamedRateLimit.takeShared refuses RESOURCE_EXHAUSTED naming the variable; capacity 0 is off", async () => {
    const db = await opened(open);
    const store = await SharedRateLimits.open(db.db);
    const limit = new NamedRateLimit("profile lookups per caller", "X_RATE_PER_MINUTE", 1, MINUTE);
    await limit.takeShared(store, "a", 0);
    await expect(limit.takeShared(store, "a", 1_000)).rejects.toThrow(ResourceExhaustedError);
    await expect(limit.takeShared(store, "a", 1_000)).rejects.toThrow(
      "profile lookups per caller (X_RATE_PER_MINUTE=1 per minute): rate limit exceeded, retry in 59 s",
    );
    const off = new NamedRateLimit("x", "OFF", 0, MINUTE);
    for (let i = 0; i < 3; i++) await off.takeShared(store, "a", 0);
    expect(await db.db.select().from(rateLimitBuckets)).toHaveLength(1);
  });
});

describe("SharedRateLimits across replicas (pg)", () => {
  it("two handles on one database (two replicas) share one bucket, concurrent takes included", async () => {
    const first = await opened(() => createTestDatabase());
    const url = first.url as string;
    const second = await openDatabase({ driver: "pg", url });
    closers.push(() => second.close());
    const a = await SharedRateLimits.open(first.db);
    const b = await SharedRateLimits.open(second.db);
    const takes = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).take("L", 5, MINUTE, "caller", 0)),
    );
    expect(takes.filter((w) => w === 0)).toHaveLength(5);
    expect(await b.take("L", 5, MINUTE, "caller", 0)).toBeGreaterThan(0);
    expect(await a.take("L", 5, MINUTE, "caller", 0)).toBeGreaterThan(0);
  });

  it("refuses a secret shorter than 16 bytes", async () => {
    const db = await opened(() => createTestPglite());
    await expect(SharedRateLimits.open(db.db, { secret: new Uint8Array(8) })).rejects.toThrow(
      SharedRateLimitsError,
    );
  });
});
