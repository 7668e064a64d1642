// Issue #13 finding 3: the AS stores each client's credential, whose validity the client chose at
// registration. An exact start would be the registration instant, joinable with the QS's records
// of the same instant however coarse the AS's own time columns are.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGrpcTransport, PhoenixClient, type Transport } from "@phoenix/client";
import { ClientCredential } from "@phoenix/crypto";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { startHomeserver } from "../src/index.js";

const HOUR = 3_600_000;

describe("client credentials stored by the AS (snapshot adversary)", () => {
  it("carry no registration instant: validity starts and ends on a whole hour", async () => {
    const hs = await startHomeserver({ domain: "times.example" });
    const dir = await mkdtemp(join(tmpdir(), "phoenix-times-"));
    const transports: Transport[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const transport = createGrpcTransport(hs.addresses);
        transports.push(transport);
        const client = await PhoenixClient.register({
          transport,
          storePath: join(dir, `u${i}.sqlite`),
          domain: hs.domain,
          displayName: `User ${i}`,
        });
        await client.close();
      }
      const db = new pg.Client({ connectionString: hs.databaseUrls.auth });
      await db.connect();
      try {
        const rows = (await db.query<{ credential: Buffer }>("select credential from clients")).rows;
        expect(rows).toHaveLength(3);
        for (const { credential } of rows) {
          const { notBefore, notAfter } = ClientCredential.decode(new Uint8Array(credential)).expiration;
          expect(notBefore % HOUR).toBe(0);
          expect(notAfter % HOUR).toBe(0);
        }
      } finally {
        await db.end();
      }
    } finally {
      for (const t of transports) t.close();
      await hs.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
