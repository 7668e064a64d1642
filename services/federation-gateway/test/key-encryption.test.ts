import { randomBytes } from "node:crypto";
import { SigningKey, toHex } from "@phoenix/crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { federationKeyEncryption } from "../src/store/key-store.js";
import { type GatewayNode, Network } from "./support/harness.js";

const A = "a.test";
const B = "b.test";

interface KeyRow {
  keyId: Uint8Array;
  publicKey: Uint8Array;
  seed: Uint8Array;
  seedKekId: Uint8Array | null;
}

async function ownKeyRows(node: GatewayNode): Promise<KeyRow[]> {
  const result = (await node.db.db.execute(
    sql`SELECT key_id AS "keyId", public_key AS "publicKey", seed, seed_kek_id AS "seedKekId"
        FROM fed_own_keys ORDER BY not_before`,
  )) as unknown as { rows: KeyRow[] };
  return result.rows;
}

/** True when `needle` occurs in `haystack` (a seed inside a stored column). */
function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(haystack).includes(Buffer.from(needle));
}

describe("federation signing keys encrypted at rest (FEDERATION_KEY_ENCRYPTION_KEY)", () => {
  const key = randomBytes(32).toString("hex");
  const pinned = SigningKey.generate();
  let net: Network;
  let a: GatewayNode;

  beforeAll(async () => {
    net = await Network.start([A, B], {
      env: {
        [A]: { FEDERATION_KEY_ENCRYPTION_KEY: key, FEDERATION_SIGNING_KEY: toHex(pinned.exportSeed()) },
      },
    });
    a = net.node(A);
  });
  afterAll(async () => {
    await net?.stop();
  });

  it("stores no seed in the database, generated or operator-pinned", async () => {
    const rows = await ownKeyRows(a);
    expect(rows.length).toBe(1);
    const generated = net.node(B);
    const bRows = await ownKeyRows(generated);
    expect(bRows.length).toBe(1);
    const bSeed = generated.running?.gateway.context.keys.active()?.signingKey.exportSeed();
    expect(bSeed).toHaveLength(32);
    for (const [row, seed] of [
      [rows[0], pinned.exportSeed()],
      [bRows[0], bSeed ?? new Uint8Array(32)],
    ] as const) {
      expect(row?.seedKekId).not.toBeNull();
      expect(contains(row?.seed ?? new Uint8Array(), seed)).toBe(false);
    }
  });

  it("refuses to start without the key or with another one, naming the variable", async () => {
    await a.stopGateway();
    await expect(a.start({ FEDERATION_KEY_ENCRYPTION_KEY: "" })).rejects.toThrow(
      /FEDERATION_KEY_ENCRYPTION_KEY: missing/,
    );
    await expect(a.start({ FEDERATION_KEY_ENCRYPTION_KEY: randomBytes(32).toString("hex") })).rejects.toThrow(
      /neither FEDERATION_KEY_ENCRYPTION_KEY nor FEDERATION_KEY_ENCRYPTION_KEY_PREVIOUS/,
    );
    await expect(a.start({ FEDERATION_KEY_ENCRYPTION_KEY: "not-a-key" })).rejects.toThrow(
      /FEDERATION_KEY_ENCRYPTION_KEY: must be a 32-byte key/,
    );
    // The database is unchanged: the right key still opens it.
    await a.start();
    expect(toHex(a.running?.gateway.context.keys.active()?.publicKey ?? new Uint8Array())).toBe(
      toHex(pinned.publicKey),
    );
  });

  it("seals plaintext seeds left by an older version at start and rotates through _PREVIOUS", async () => {
    await a.stopGateway();
    // The row as a version without key encryption wrote it.
    const encryption = federationKeyEncryption(key);
    for (const row of await ownKeyRows(a)) {
      const seed = encryption.open({ bytes: row.seed, kekId: row.seedKekId }, row.keyId, "test");
      await a.db.db.execute(
        sql`UPDATE fed_own_keys SET seed = ${seed}, seed_kek_id = NULL WHERE key_id = ${row.keyId}`,
      );
    }
    expect(contains((await ownKeyRows(a))[0]?.seed ?? new Uint8Array(), pinned.exportSeed())).toBe(true);

    await a.start();
    let rows = await ownKeyRows(a);
    expect(rows.every((r) => r.seedKekId !== null && !contains(r.seed, pinned.exportSeed()))).toBe(true);
    const sealedUnderFirst = toHex(rows[0]?.seedKekId ?? new Uint8Array());
    // B still verifies what A signs: the same key signs after the migration.
    const keys = await net.federationClient(A).getDomainKeys({});
    expect(keys.keys.map((k) => toHex(k.publicKey))).toEqual([toHex(pinned.publicKey)]);

    // Rotation: the new key with the old one as _PREVIOUS reseals; afterwards the old one is not needed.
    const next = randomBytes(32).toString("base64");
    await a.stopGateway();
    await a.start({ FEDERATION_KEY_ENCRYPTION_KEY: next, FEDERATION_KEY_ENCRYPTION_KEY_PREVIOUS: key });
    await a.stopGateway();
    rows = await ownKeyRows(a);
    expect(rows.every((r) => toHex(r.seedKekId ?? new Uint8Array()) !== sealedUnderFirst)).toBe(true);
    await a.start({ FEDERATION_KEY_ENCRYPTION_KEY: next });
    expect(toHex(a.running?.gateway.context.keys.active()?.publicKey ?? new Uint8Array())).toBe(
      toHex(pinned.publicKey),
    );
  });
});
