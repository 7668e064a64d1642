// The QS's periodic sweep deletes admin_audit rows past ADMIN_AUDIT_RETENTION (like the AS's
// expiry job and the federation gateway's pruning): the audit log has a lifetime too.
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Harness } from "./support/harness.js";

const DAY = 86_400_000;
let h: Harness;

beforeAll(async () => {
  h = await Harness.start({ config: { ADMIN_AUDIT_RETENTION: 30 * DAY } });
});
afterAll(async () => {
  await h?.stop();
});

async function methods(): Promise<string[]> {
  const result = (await h.db.db.execute(sql`SELECT method FROM admin_audit ORDER BY method`)) as unknown as {
    rows: { method: string }[];
  };
  return result.rows.map((r) => r.method);
}

describe("admin audit lifetime", () => {
  it("deletes audit rows older than ADMIN_AUDIT_RETENTION in the sweep and keeps younger ones", async () => {
    const at = (daysAgo: number) => new Date(Date.now() - daysAgo * DAY).toISOString();
    await h.db.db.execute(
      sql`INSERT INTO admin_audit (at, operator, authenticated, method, target, outcome)
          VALUES (${at(31)}, 'ops', true, 'old', '', 'ok'), (${at(29)}, 'ops', true, 'young', '', 'ok')`,
    );
    expect(await methods()).toEqual(["old", "young"]);
    expect((await h.service.sweep()).auditRows).toBe(1);
    expect(await methods()).toEqual(["young"]);
  });
});
