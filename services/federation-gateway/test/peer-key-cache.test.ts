// The peer key directory's memory is bounded: at most maxEntries domains, each forgotten ttlMs
// after it was cached (injected clock); the database cache behind it keeps what memory dropped.
import { SigningKey, signatureKeyId } from "@phoenix/crypto";
import type { federation } from "@phoenix/proto";
import { createLogger } from "@phoenix/runtime/log";
import { createTestDatabase, type TestDatabase } from "@phoenix/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PeerClients } from "../src/outbound/peer-clients.js";
import { PeerKeyDirectory } from "../src/outbound/peer-keys.js";
import { GATEWAY_MIGRATIONS } from "../src/store/migrations.js";

describe("peer key cache bounds", () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase({ migrationsFolder: GATEWAY_MIGRATIONS });
  });
  afterAll(async () => {
    await db?.close();
  });

  it("holds at most maxEntries domains in memory and refetches a list past its TTL", async () => {
    let now = Date.now();
    const fetched: string[] = [];
    const key = SigningKey.generate().verifyingKey;
    const clients = {
      get: async (domain: string) => ({
        getDomainKeys: async (): Promise<federation.GetDomainKeysResponse> => {
          fetched.push(domain);
          return {
            domain,
            keys: [
              {
                keyId: signatureKeyId(key),
                publicKey: key.bytes,
                notBefore: new Date(now - 60_000),
                notAfter: new Date(now + 86_400_000),
              },
            ],
          };
        },
      }),
    } as unknown as PeerClients;
    const directory = new PeerKeyDirectory({
      db: db.db,
      clients,
      logger: createLogger({ service: "peer-key-cache-test", level: "silent" }),
      ttlMs: 60_000,
      refetchMs: 0,
      maxEntries: 2,
      now: () => now,
    });

    for (const d of ["a.test", "b.test", "c.test"]) expect(await directory.keysFor(d)).toHaveLength(1);
    expect(directory.cachedDomains).toBe(2);
    // a.test left memory but its fresh list is still in the database: no second fetch.
    expect(await directory.keysFor("a.test")).toHaveLength(1);
    expect(fetched).toEqual(["a.test", "b.test", "c.test"]);

    now += 60_000;
    expect(await directory.keysFor("b.test")).toHaveLength(1);
    expect(fetched).toEqual(["a.test", "b.test", "c.test", "b.test"]);
    expect(directory.cachedDomains).toBeLessThanOrEqual(2);
  });
});
