// Issue #13 finding 3: a snapshot adversary holding the AS and QS databases must not be able to
// pair a user id with its pseudonymous QS record by the times the two registrations left behind.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGrpcTransport, PhoenixClient, type Transport } from "@phoenix/client";
import { parseUserId, toHex } from "@phoenix/crypto";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { startHomeserver } from "../src/index.js";

const USERS = 50;
/**
 * Random pairing of n users links 1 pair right on average (Poisson(1) for large n): 4 or more
 * correct happens in under 2 % of random pairings. An adversary whose expected number of correct
 * links stays at or below 3 learns nothing a coin could not tell it.
 */
const CHANCE_MARGIN = 3;

/** Every timestamp column of the database, per table, with the column that names the user. */
async function timeFeatures(
  url: string,
  userColumn: string,
  viaClient?: { table: string; client: string; user: string },
): Promise<Map<string, Map<string, number>>> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    const columns = await db.query<{ table_name: string; column_name: string; data_type: string }>(
      `select table_name, column_name, data_type from information_schema.columns
       where table_schema = 'public' order by table_name, column_name`,
    );
    const byTable = new Map<string, { columns: Set<string>; times: string[] }>();
    for (const c of columns.rows) {
      const t = byTable.get(c.table_name) ?? { columns: new Set(), times: [] };
      t.columns.add(c.column_name);
      if (c.data_type.startsWith("timestamp")) t.times.push(c.column_name);
      byTable.set(c.table_name, t);
    }
    const features = new Map<string, Map<string, number>>();
    for (const [table, t] of byTable) {
      let key: string;
      let from = `"${table}" as t`;
      if (t.columns.has(userColumn)) key = `t."${userColumn}"`;
      else if (viaClient !== undefined && t.columns.has(viaClient.client) && table !== viaClient.table) {
        key = `c."${viaClient.user}"`;
        from += ` join "${viaClient.table}" as c on c."${viaClient.client}" = t."${viaClient.client}"`;
      } else continue;
      for (const column of t.times) {
        // Seconds since the epoch with the stored precision (microseconds in Postgres).
        const rows = await db.query<{ id: Buffer; at: number }>(
          `select ${key} as id, min(extract(epoch from t."${column}"))::float8 as at from ${from}
           where t."${column}" is not null group by ${key}`,
        );
        const values = new Map(rows.rows.map((r) => [r.id.toString("hex"), r.at]));
        if (values.size > 0) features.set(`${table}.${column}`, values);
      }
    }
    return features;
  } finally {
    await db.end();
  }
}

/**
 * The adversary: pair each AS user with the QS user whose time is nearest (ties broken uniformly
 * at random). Returns the expected number of correct pairs, exactly (no sampling).
 */
function expectedCorrect(
  as: Map<string, number>,
  qs: Map<string, number>,
  truth: Map<string, string>,
): number {
  let expected = 0;
  for (const [asUser, x] of as) {
    const partner = truth.get(asUser);
    if (partner === undefined) continue;
    let best = Number.POSITIVE_INFINITY;
    let nearest: string[] = [];
    for (const [qsUser, y] of qs) {
      const d = Math.abs(x - y);
      if (d < best - 1e-9) {
        best = d;
        nearest = [qsUser];
      } else if (Math.abs(d - best) <= 1e-9) nearest.push(qsUser);
    }
    if (nearest.includes(partner)) expected += 1 / nearest.length;
  }
  return expected;
}

describe("registration timestamps (snapshot adversary)", () => {
  it(`do not let a nearest-timestamp join of AS and QS tables link ${USERS} users better than chance`, async () => {
    const hs = await startHomeserver({ domain: "link.example" });
    const dir = await mkdtemp(join(tmpdir(), "phoenix-link-"));
    const transports: Transport[] = [];
    // Ground truth: the AS user id each client got, and the QS user id the QS answered it.
    const truth = new Map<string, string>();
    try {
      for (let i = 0; i < USERS; i++) {
        const transport = createGrpcTransport(hs.addresses);
        transports.push(transport);
        let qsUserId: Uint8Array | undefined;
        const queue = new Proxy(transport.queue, {
          get(target, property) {
            const value: unknown = Reflect.get(target, property, target);
            if (property !== "createUser" || typeof value !== "function") {
              return typeof value === "function" ? value.bind(target) : value;
            }
            return async (...args: unknown[]) => {
              const response = await value.apply(target, args);
              qsUserId = (response as { qsUserId: Uint8Array }).qsUserId;
              return response;
            };
          },
        });
        const client = await PhoenixClient.register({
          transport: { ...transport, queue, close: () => transport.close() },
          storePath: join(dir, `u${i}.sqlite`),
          domain: hs.domain,
          displayName: `User ${i}`,
        });
        if (qsUserId === undefined) throw new Error("registration made no QS user record");
        truth.set(toHex(parseUserId(client.userId).uuid), toHex(qsUserId));
        await client.close();
      }

      const asFeatures = await timeFeatures(hs.databaseUrls.auth, "user_uuid");
      const qsFeatures = await timeFeatures(hs.databaseUrls.queue, "user_id", {
        table: "qs_clients",
        client: "client_id",
        user: "user_id",
      });
      let best = { links: 0, pair: "none" };
      for (const [asName, as] of asFeatures) {
        for (const [qsName, qs] of qsFeatures) {
          const links = expectedCorrect(as, qs, truth);
          if (links > best.links) best = { links, pair: `${asName} ~ ${qsName}` };
        }
      }
      console.info(
        `linkability: best expected correct pairs ${best.links.toFixed(2)} of ${USERS} (${best.pair}); ` +
          `AS times ${[...asFeatures.keys()].join(", ")}; QS times ${[...qsFeatures.keys()].join(", ")}`,
      );
      expect(truth.size).toBe(USERS);
      expect(best.links, best.pair).toBeLessThanOrEqual(CHANCE_MARGIN);
    } finally {
      for (const t of transports) t.close();
      await hs.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
