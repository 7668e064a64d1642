import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { transaction } from "../db/transaction.js";
import { createTestDatabase, createTestPglite, type TestDatabase } from "../testing/test-database.js";
import { ReplayStore, ReplayStoreError } from "./replay-store.js";
import { seenRequests } from "./schema.js";

const drivers: { name: string; open: () => Promise<TestDatabase> }[] = [
  { name: "pg", open: () => createTestDatabase() },
  { name: "pglite", open: () => createTestPglite() },
];

class RollBack extends Error {
  override readonly name = "RollBackError";
}

describe.each(drivers)("ReplayStore on $name", ({ open }) => {
  const sender = new TextEncoder().encode("client-7f3a");

  it("accepts a request id once, per sender, and never stores the ids", async () => {
    const db = await open();
    try {
      const store = new ReplayStore(randomBytes(32));
      const id = randomBytes(16);
      const expires = new Date(Date.now() + 60_000);
      expect(await store.claim(db.db, [sender, id], expires)).toBe(true);
      expect(await store.claim(db.db, [sender, id], expires)).toBe(false);
      expect(await store.claim(db.db, [new TextEncoder().encode("other"), id], expires)).toBe(true);
      const rows = await db.db.select().from(seenRequests);
      expect(rows).toHaveLength(2);
      const dump = Buffer.concat(rows.map((r) => Buffer.from(r.marker))).toString("latin1");
      expect(dump).not.toContain("client-7f3a");
      expect(Buffer.concat(rows.map((r) => Buffer.from(r.marker))).includes(id)).toBe(false);
    } finally {
      await db.close();
    }
  });

  it("leaves no claim behind when the request's transaction rolls back", async () => {
    const db = await open();
    try {
      const store = new ReplayStore(randomBytes(32));
      const id = randomBytes(16);
      const expires = new Date(Date.now() + 60_000);
      await expect(
        transaction(db.db, async (tx) => {
          expect(await store.claim(tx, [sender, id], expires)).toBe(true);
          throw new RollBack("the request failed after its claim");
        }),
      ).rejects.toThrow(RollBack);
      expect(await store.claim(db.db, [sender, id], expires)).toBe(true);
    } finally {
      await db.close();
    }
  });

  it("sweeps expired markers only, after which the id is accepted again", async () => {
    const db = await open();
    try {
      const store = new ReplayStore(randomBytes(32));
      const old = randomBytes(16);
      const live = randomBytes(16);
      const now = new Date("2026-01-01T00:00:00Z");
      await store.claim(db.db, [sender, old], new Date(now.getTime() - 1));
      await store.claim(db.db, [sender, live], new Date(now.getTime() + 60_000));
      expect(await store.sweep(db.db, now)).toBe(1);
      expect(await db.db.select().from(seenRequests)).toHaveLength(1);
      expect(await store.claim(db.db, [sender, old], new Date(now.getTime() + 60_000))).toBe(true);
      expect(await store.claim(db.db, [sender, live], new Date(now.getTime() + 60_000))).toBe(false);
    } finally {
      await db.close();
    }
  });

  it("keeps refusing a request seen under the previous marker key after a key change", async () => {
    const db = await open();
    try {
      const oldKey = randomBytes(32);
      const id = randomBytes(16);
      const expires = new Date(Date.now() + 60_000);
      expect(await new ReplayStore(oldKey).claim(db.db, [sender, id], expires)).toBe(true);
      const rotated = new ReplayStore(randomBytes(32), [oldKey]);
      expect(await rotated.claim(db.db, [sender, id], expires)).toBe(false);
      expect(await rotated.claim(db.db, [sender, randomBytes(16)], expires)).toBe(true);
    } finally {
      await db.close();
    }
  });
});

describe("ReplayStore keys", () => {
  it("refuses a short marker key and separates parts unambiguously", () => {
    expect(() => new ReplayStore(new Uint8Array(8))).toThrow(ReplayStoreError);
    const store = new ReplayStore(new Uint8Array(32).fill(1));
    const enc = (s: string) => new TextEncoder().encode(s);
    expect(store.marker([enc("ab"), enc("c")])).not.toEqual(store.marker([enc("a"), enc("bc")]));
    expect(new ReplayStore(new Uint8Array(32).fill(2)).marker([enc("a")])).not.toEqual(
      store.marker([enc("a")]),
    );
  });
});
