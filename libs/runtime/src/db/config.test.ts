import { describe, expect, it } from "vitest";
import { DatabaseConfigError, databaseConfig, databaseConnectionFromConfig } from "./config.js";

describe("databaseConfig", () => {
  it("chooses Postgres when DATABASE_URL is set, even with DATA_DIR", () => {
    const config = databaseConfig.parse({
      DATABASE_URL: "postgres://app@db:5432/delivery",
      DATABASE_POOL_MAX: "4",
      DATA_DIR: "/var/lib/phoenix",
    });
    expect(databaseConnectionFromConfig(config, { name: "delivery" })).toEqual({
      driver: "pg",
      url: "postgres://app@db:5432/delivery",
      poolMax: 4,
    });
  });

  it("chooses PGlite in a per-service directory under DATA_DIR", () => {
    const config = databaseConfig.parse({ DATA_DIR: "/var/lib/phoenix", DATABASE_URL: "" });
    expect(databaseConnectionFromConfig(config, { name: "queue" })).toEqual({
      driver: "pglite",
      dataDir: "/var/lib/phoenix/pglite/queue",
    });
  });

  it("refuses to run without storage unless in-memory is allowed", () => {
    const config = databaseConfig.parse({});
    expect(() => databaseConnectionFromConfig(config, { name: "auth" })).toThrow(DatabaseConfigError);
    expect(() => databaseConnectionFromConfig(config, { name: "auth" })).toThrow(/DATABASE_URL.*DATA_DIR/);
    expect(databaseConnectionFromConfig(config, { name: "auth", allowInMemory: true })).toEqual({
      driver: "pglite",
    });
  });

  it("names the variable that is malformed", () => {
    const bad = databaseConfig.safeParse({ DATABASE_URL: "mysql://db/x", DATABASE_POOL_MAX: "zero" });
    expect(bad.success).toBe(false);
    const paths = bad.error?.issues.map((issue) => issue.path.join(".")).sort();
    expect(paths).toEqual(["DATABASE_POOL_MAX", "DATABASE_URL"]);
  });
});
