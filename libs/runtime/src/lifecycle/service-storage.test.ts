import { sql } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { busConfig } from "../bus/config.js";
import type { Bus } from "../bus/types.js";
import { serviceConfig } from "../config/base-config.js";
import { loadConfig } from "../config/load-config.js";
import { databaseConfig } from "../db/config.js";
import { Readiness } from "../health/readiness.js";
import { createLogger } from "../log/create-logger.js";
import { createMetrics } from "../metrics/create-metrics.js";
import { createTestDatabase, type TestDatabase } from "../testing/index.js";
import { type Closeable, closeAll } from "./closeables.js";
import type { ServiceRuntime } from "./run-service.js";
import { openServiceStorage } from "./service-storage.js";

const schema = serviceConfig({ serviceName: "storage-test" }).extend({
  ...databaseConfig.shape,
  ...busConfig.shape,
});

function runtimeFor(env: Record<string, string>) {
  const registered: { resource: Closeable; name: string | undefined }[] = [];
  const runtime: ServiceRuntime<ReturnType<typeof loadConfig<typeof schema>>> = {
    config: loadConfig(schema, env),
    logger: createLogger({ service: "storage-test", level: "silent" }),
    metrics: createMetrics({ service: "storage-test" }),
    readiness: new Readiness(),
    onShutdown: (resource, name) => void registered.push({ resource, name }),
  };
  return { runtime, registered };
}

describe("openServiceStorage", () => {
  let testDb: TestDatabase | undefined;
  afterEach(async () => {
    await testDb?.close();
    testDb = undefined;
  });

  it("opens a migrated database, its watch and a bus from config and registers them, database first", async () => {
    testDb = await createTestDatabase();
    const { runtime, registered } = runtimeFor({ DATABASE_URL: testDb.url ?? "" });
    const { database, bus } = await openServiceStorage(runtime, {
      name: "storage-test",
      migrationsFolder: new URL("../db/test-fixture/migrations", import.meta.url).pathname,
    });
    // Closing runs in reverse order: the bus (which may live in the database) closes first, the
    // database's watch stops before the pool it probes.
    expect(registered.map((r) => r.name)).toEqual(["database", "database watch", "bus"]);
    expect(runtime.readiness.dependency("database").state.up).toBe(true);
    // Both migrations of the fixture ran: the second one added `note` and `size` to `blobs`.
    const result = await database.db.execute(
      sql`select column_name from information_schema.columns where table_name = 'blobs' order by column_name`,
    );
    expect((result as unknown as { rows: { column_name: string }[] }).rows.map((r) => r.column_name)).toEqual(
      ["big", "data", "id", "note", "size"],
    );
    await bus.ensureStream({ name: `STORAGE_${Date.now()}`, subjects: [`storage.${Date.now()}.>`] });
    const failed = await closeAll(
      registered.map(({ resource, name }) => ({ resource, name: name ?? "resource" })).reverse(),
      { timeoutMs: 10_000 },
    );
    expect(failed).toEqual([]);
  });

  it("uses handed-in resources and leaves closing them to the caller", async () => {
    testDb = await createTestDatabase();
    const bus = { close: async () => {} } as unknown as Bus;
    const { runtime, registered } = runtimeFor({});
    const storage = await openServiceStorage(
      runtime,
      { name: "unused", migrationsFolder: "/nonexistent" },
      { database: testDb, bus },
    );
    expect(storage.database).toBe(testDb);
    expect(storage.bus).toBe(bus);
    expect(registered).toEqual([]);
  });
});
