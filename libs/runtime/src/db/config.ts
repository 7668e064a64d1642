import { join } from "node:path";
import { z } from "zod";
import type { DatabaseConnectionOptions } from "./open-database.js";

const unsetWhenEmpty = (value: unknown): unknown => (value === "" ? undefined : value);

/**
 * Env fragment choosing the database; merge it into a service's config schema
 * (`z.object({ ...databaseConfig.shape, ... })`). `DATABASE_URL` selects Postgres and wins when
 * both are set; otherwise `DATA_DIR` selects embedded PGlite on disk.
 */
export const databaseConfig = z.object({
  DATABASE_URL: z.preprocess(unsetWhenEmpty, z.url({ protocol: /^postgres(ql)?$/ }).optional()),
  DATABASE_POOL_MAX: z.preprocess(unsetWhenEmpty, z.coerce.number().int().min(1).max(1000).optional()),
  DATA_DIR: z.preprocess(unsetWhenEmpty, z.string().optional()),
});

export type DatabaseConfig = z.infer<typeof databaseConfig>;

/** Neither `DATABASE_URL` nor `DATA_DIR` is set and in-memory storage was not allowed. */
export class DatabaseConfigError extends Error {
  override readonly name = "DatabaseConfigError";
}

export interface DatabaseConnectionFromConfigOptions {
  /** This service's database directory under `DATA_DIR` (one PGlite database per service). */
  name: string;
  /** Fall back to a throw-away in-memory PGlite database (tests, demos) instead of failing. */
  allowInMemory?: boolean;
}

/** Turns the parsed env fragment into `openDatabase` connection options. */
export function databaseConnectionFromConfig(
  config: DatabaseConfig,
  options: DatabaseConnectionFromConfigOptions,
): DatabaseConnectionOptions {
  if (config.DATABASE_URL) {
    return {
      driver: "pg",
      url: config.DATABASE_URL,
      ...(config.DATABASE_POOL_MAX ? { poolMax: config.DATABASE_POOL_MAX } : {}),
    };
  }
  if (config.DATA_DIR) return { driver: "pglite", dataDir: join(config.DATA_DIR, "pglite", options.name) };
  if (options.allowInMemory) return { driver: "pglite" };
  throw new DatabaseConfigError(
    "no database configured: set DATABASE_URL (Postgres) or DATA_DIR (embedded PGlite on disk)",
  );
}
