import { ClientCredential, randomBytes, toHex } from "@phoenix/crypto";
import { auth } from "@phoenix/proto";
import { createTestDatabase, ServiceProcess, type TestDatabase } from "@phoenix/runtime/testing";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyEncryption, openStoredKey } from "../src/domain/key-encryption.js";
import { authMigrationsFolder } from "../src/service.js";
import {
  type Harness,
  newClient,
  queryNumber,
  registerRequest,
  registerUser,
  S,
  signAs,
  startAuth,
  type TestClient,
} from "./support/harness.js";

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

/**
 * Turns every sealed key back into a plaintext seed, as a version before key encryption left
 * them (the upgrade path under test).
 */
async function unsealAll(db: TestDatabase, key: string): Promise<void> {
  const encryption = new KeyEncryption(key);
  const result = (await db.db.execute(
    sql`SELECT fingerprint, signing_key AS "signingKey", signing_key_kek_id AS "signingKeyKekId"
        FROM as_credentials WHERE signing_key IS NOT NULL`,
  )) as unknown as {
    rows: { fingerprint: Uint8Array; signingKey: Uint8Array; signingKeyKekId: Uint8Array }[];
  };
  for (const row of result.rows) {
    const seed = openStoredKey(row, row.fingerprint, encryption);
    await db.db.execute(
      sql`UPDATE as_credentials SET signing_key = ${seed}, signing_key_kek_id = NULL
          WHERE fingerprint = ${row.fingerprint}`,
    );
  }
}

async function markers(db: TestDatabase): Promise<string[]> {
  const result = (await db.db.execute(
    sql`SELECT encode(marker, 'hex') AS marker FROM phoenix_runtime.seen_requests`,
  )) as unknown as { rows: { marker: string }[] };
  return result.rows.map((r) => r.marker);
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

  it("seals plaintext keys of an older version on start, keeps the credentials, and refuses to start without the key", async () => {
    let h = await startAuth({ AS_KEY_ENCRYPTION_KEY: K1 }, { database: db });
    const alice = await registerUser(h);
    const intermediate = await intermediateOf(h);
    expect(await plaintextSeeds(h)).toBe(0);
    await h.close();
    // The database as a version without key encryption left it: plaintext seeds.
    await unsealAll(db, K1);
    expect((await keyRows(db)).every((r) => r.kekId === null)).toBe(true);

    // Started with the key: every stored key is sealed under it, the same intermediate keeps signing.
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

    await expect(startAuth({ AS_KEY_ENCRYPTION_KEY: undefined }, { database: db })).rejects.toThrow(
      /AS_KEY_ENCRYPTION_KEY: missing/,
    );
    await expect(startAuth({ AS_KEY_ENCRYPTION_KEY: K2 }, { database: db })).rejects.toThrow(
      /neither AS_KEY_ENCRYPTION_KEY nor AS_KEY_ENCRYPTION_KEY_PREVIOUS/,
    );
    await expect(startAuth({ AS_KEY_ENCRYPTION_KEY: "too-short" }, { database: db })).rejects.toThrow(
      /AS_KEY_ENCRYPTION_KEY: must be a 32-byte key/,
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

describe("AS replay markers", () => {
  it("are keyed with the deployment's secret: the same request leaves different markers in two deployments", async () => {
    const one = await startAuth({ AS_KEY_ENCRYPTION_KEY: toHex(randomBytes(32)) });
    const two = await startAuth({ AS_KEY_ENCRYPTION_KEY: toHex(randomBytes(32)) });
    try {
      const client = newClient();
      const registration = await registerRequest(client, one.now());
      const registered = await one.as.registerUser(registration);
      await two.as.registerUser(registration);
      const alice = { ...client, credential: registered.clientCredential };
      const signed = await signAs(
        alice,
        auth.ListClientsTbs,
        S.listClients,
        { userId: alice.wireId.user },
        one.now(),
      );
      await one.as.listClients({ signed });
      await two.as.listClients({ signed });
      const first = await markers(one.db);
      const second = await markers(two.db);
      expect(first.length).toBeGreaterThan(0);
      expect(second.length).toBe(first.length);
      expect(first.filter((m) => second.includes(m))).toEqual([]);
    } finally {
      await one.close();
      await two.close();
    }
  });
});

describe("the AS process (src/main.ts, the image's `auth` command)", () => {
  it("refuses to start without AS_KEY_ENCRYPTION_KEY and names the variable", async () => {
    const db = await createTestDatabase({ migrationsFolder: authMigrationsFolder });
    try {
      // The whole environment of the child: AS_KEY_ENCRYPTION_KEY of the test process does not leak in.
      const child = ServiceProcess.spawn({
        name: "auth",
        entry: "services/auth/src/main.ts",
        env: {
          DATABASE_URL: db.url ?? "",
          AS_DOMAIN: "alpha.example",
          GRPC_PORT: "0",
          METRICS_PORT: "0",
          LOG_LEVEL: "info",
        },
      });
      // The process either exits, or logs that it serves (then it started without the key).
      const outcome = await Promise.race([
        child.exited.then((exit) => `exit ${exit.code}`),
        child
          .waitForLine((l) => /listening|ready/.test(l.msg), { what: "a listening line", timeoutMs: 60_000 })
          .then(() => "started"),
      ]);
      await child.kill();
      expect(outcome).toBe("exit 1");
      expect(child.output).toContain("AS_KEY_ENCRYPTION_KEY: missing");
    } finally {
      await db.close();
    }
  });
});
