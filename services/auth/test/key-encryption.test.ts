import { ClientCredential, randomBytes, toHex } from "@phoenix/crypto";
import { auth } from "@phoenix/proto";
import { createTestDatabase, type TestDatabase } from "@phoenix/runtime/testing";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { authMigrationsFolder } from "../src/service.js";
import { type Harness, queryNumber, registerUser, S, signAs, startAuth, type TestClient } from "./harness.js";

const K1 = toHex(randomBytes(32));
const K2 = Buffer.from(randomBytes(32)).toString("base64");

interface KeyRow {
  fingerprint: string;
  kekId: string | null;
}

async function keyRows(db: TestDatabase): Promise<KeyRow[]> {
  const result = (await db.db.execute(
    sql`SELECT encode(fingerprint, 'hex') AS fingerprint, encode(signing_key_kek_id, 'hex') AS "kekId"
        FROM as_credentials WHERE signing_key IS NOT NULL ORDER BY fingerprint`,
  )) as unknown as { rows: KeyRow[] };
  return result.rows;
}

/** Rows whose stored signing key contains the current signer's seed in plaintext. */
async function plaintextSeeds(h: Harness): Promise<number> {
  const seed = (await h.service.keyring.currentSigner()).key.exportSeed();
  return queryNumber(
    h.db.db,
    sql`SELECT count(*) FROM as_credentials WHERE position(${seed} in signing_key) > 0`,
  );
}

async function listsClients(h: Harness, client: TestClient): Promise<number> {
  const signed = await signAs(
    client,
    auth.ListClientsTbs,
    S.listClients,
    { userId: client.wireId.user },
    h.now(),
  );
  return (await h.as.listClients({ signed })).clients.length;
}

async function intermediateOf(h: Harness): Promise<string> {
  return toHex((await h.service.keyring.currentSigner()).credential.fingerprint);
}

describe("AS signing keys encrypted at rest (AS_KEY_ENCRYPTION_KEY)", () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase({ migrationsFolder: authMigrationsFolder });
  });
  afterAll(async () => {
    await db?.close();
  });

  it("seals existing keys on start, keeps the credentials, and refuses to start without the key", async () => {
    // First start without key encryption: plaintext seeds.
    let h = await startAuth({}, { database: db });
    const alice = await registerUser(h);
    const intermediate = await intermediateOf(h);
    expect(await plaintextSeeds(h)).toBe(1);
    await h.close();

    // With a key: every stored key is sealed under it, the same intermediate keeps signing.
    h = await startAuth({ AS_KEY_ENCRYPTION_KEY: K1 }, { database: db });
    try {
      const rows = await keyRows(db);
      expect(rows.length).toBeGreaterThanOrEqual(2); // the root and the intermediate
      expect(new Set(rows.map((r) => r.kekId)).size).toBe(1);
      expect(rows[0]?.kekId).not.toBeNull();
      expect(await plaintextSeeds(h)).toBe(0);
      expect(await intermediateOf(h)).toBe(intermediate);
      expect(await listsClients(h, alice)).toBe(1);
      const bob = await registerUser(h);
      expect(toHex(ClientCredential.decode(bob.credential).signerFingerprint)).toBe(intermediate);
    } finally {
      await h.close();
    }

    await expect(startAuth({}, { database: db })).rejects.toThrow(/AS_KEY_ENCRYPTION_KEY is not set/);
    await expect(startAuth({ AS_KEY_ENCRYPTION_KEY: K2 }, { database: db })).rejects.toThrow(
      /neither AS_KEY_ENCRYPTION_KEY nor AS_KEY_ENCRYPTION_KEY_PREVIOUS/,
    );
    await expect(startAuth({ AS_KEY_ENCRYPTION_KEY: "too-short" }, { database: db })).rejects.toThrow(
      /AS_KEY_ENCRYPTION_KEY/,
    );
  });

  it("rotates the key-encryption key through AS_KEY_ENCRYPTION_KEY_PREVIOUS", async () => {
    const before = await keyRows(db);
    let h = await startAuth(
      { AS_KEY_ENCRYPTION_KEY: K2, AS_KEY_ENCRYPTION_KEY_PREVIOUS: K1 },
      { database: db },
    );
    const intermediate = await intermediateOf(h);
    await h.close();
    const after = await keyRows(db);
    expect(after.map((r) => r.fingerprint)).toEqual(before.map((r) => r.fingerprint));
    for (const [i, row] of after.entries()) expect(row.kekId).not.toBe(before[i]?.kekId);

    // The old key is no longer needed.
    h = await startAuth({ AS_KEY_ENCRYPTION_KEY: K2 }, { database: db });
    try {
      expect(await intermediateOf(h)).toBe(intermediate);
      expect(await plaintextSeeds(h)).toBe(0);
      // A rotation made now stores the new intermediate sealed too.
      await h.service.keyring.rotate();
      const rows = await keyRows(db);
      expect(rows.every((r) => r.kekId === after[0]?.kekId)).toBe(true);
      expect(await plaintextSeeds(h)).toBe(0);
    } finally {
      await h.close();
    }
  });
});
