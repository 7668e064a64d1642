import { randomBytes } from "node:crypto";
import { createTestPglite, type TestDatabase } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StorageKeys } from "../src/domain/storage-keys.js";
import { QUEUE_MIGRATIONS } from "../src/setup.js";
import { ensureKeys, loadKeyRecords, StorageKeyMismatchError } from "../src/store/keys-store.js";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestPglite({ migrationsFolder: QUEUE_MIGRATIONS });
});
afterAll(async () => {
  await db?.close();
});

describe("QS keys under another storage key (a restore with the wrong secret)", () => {
  it("refuses to start, naming QS_STORAGE_KEY, and opens them under the right one", async () => {
    const right = new StorageKeys(randomBytes(32));
    const options = { now: new Date(), rotationIntervalMs: 86_400_000, retirementGraceMs: 86_400_000 };
    const created = await ensureKeys(db.db, right, options);
    expect(created.length).toBeGreaterThan(0);

    const wrong = new StorageKeys(randomBytes(32));
    const refused = await loadKeyRecords(db.db, wrong).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(StorageKeyMismatchError);
    expect((refused as Error).message).toMatch(
      /QS_STORAGE_KEY .* is not the secret this database was created with/,
    );
    await expect(ensureKeys(db.db, wrong, options)).rejects.toBeInstanceOf(StorageKeyMismatchError);

    const reopened = await loadKeyRecords(db.db, right);
    expect(reopened.map((k) => k.privateKey)).toEqual(created.map((k) => k.privateKey));
  });
});
