// leaderWorker on Postgres: one replica at a time runs the work; when the leader stops or its
// process dies (its connections dropped, so its session lock goes), a standby takes over.
import { randomBytes } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DatabaseHandle, openDatabase } from "../db/open-database.js";
import { createTestDatabase, eventually, type TestDatabase } from "../testing/index.js";
import { leaderWorker } from "./worker.js";

const LOCK = 0x7465737474657374n;
let testDb: TestDatabase;
beforeAll(async () => {
  testDb = await createTestDatabase();
});
afterAll(async () => {
  await testDb?.close();
});

/** A replica: its own pool (and application name, to kill its connections) and its leader worker. */
async function replica(name: string, log: string[]) {
  const applicationName = `leader-${name}-${randomBytes(3).toString("hex")}`;
  const database: DatabaseHandle = await openDatabase({
    driver: "pg",
    url: testDb.url as string,
    applicationName,
  });
  let running = false;
  const worker = leaderWorker(`work of ${name}`, {
    database,
    lockKey: LOCK,
    retryMs: 20,
    lead: async () => {
      running = true;
      log.push(`${name} starts`);
      return {
        stop: async () => {
          running = false;
          log.push(`${name} stops`);
        },
      };
    },
    onError: () => undefined,
  });
  return {
    worker,
    get running() {
      return running;
    },
    async crash() {
      await testDb.db.execute(
        sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ${applicationName}`,
      );
    },
    close: () => database.close(),
  };
}

describe("leaderWorker", () => {
  it("runs the work on one replica at a time and hands it over on stop and on a crash", async () => {
    const log: string[] = [];
    const a = await replica("a", log);
    const b = await replica("b", log);
    a.worker.start();
    await eventually(() => a.running, { message: "a leading" });
    b.worker.start();
    // b stands by while a leads.
    await new Promise((r) => setTimeout(r, 200));
    expect([a.running, b.running, a.worker.leading, b.worker.leading]).toEqual([true, false, true, false]);

    // a stops: its work stops before b's starts.
    await a.worker.stop();
    await eventually(() => b.running, { message: "b leading" });
    expect(log).toEqual(["a starts", "a stops", "b starts"]);

    // a comes back as the standby; b's process "dies": its lock goes with its connection.
    a.worker.start();
    await new Promise((r) => setTimeout(r, 100));
    expect(a.running).toBe(false);
    await b.crash();
    await eventually(() => a.running, { message: "a leading after b's crash" });
    expect(b.running).toBe(false);
    expect(log.slice(3)).toEqual(["b stops", "a starts"]);

    await a.worker.stop();
    await b.worker.stop();
    expect(log.at(-1)).toBe("a stops");
    await a.close();
    await b.close();
  });
});
