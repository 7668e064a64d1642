import { authModule } from "@phoenix/auth";
import { deliveryModule } from "@phoenix/delivery";
import { federationGatewayModule } from "@phoenix/federation-gateway";
import { queueModule } from "@phoenix/queue";
import { type Env, envUrl, loadConfig } from "@phoenix/runtime/config";
import { openDatabase, redactUrl } from "@phoenix/runtime/db";
import type { AnyServiceModule } from "@phoenix/runtime/module";
import { z } from "zod";

/** A service database that `migrate` can bring up to date, and the variable naming it. */
export interface MigrationTarget {
  service: "auth" | "delivery" | "queue" | "federation";
  variable: "AUTH_DATABASE_URL" | "DELIVERY_DATABASE_URL" | "QUEUE_DATABASE_URL" | "FEDERATION_DATABASE_URL";
  migrationsFolder: string;
}

/** Every service with a database, in the order `migrate` applies them. */
export const MIGRATION_TARGETS: readonly MigrationTarget[] = [
  { service: "auth", variable: "AUTH_DATABASE_URL", migrationsFolder: migrationsOf(authModule) },
  { service: "delivery", variable: "DELIVERY_DATABASE_URL", migrationsFolder: migrationsOf(deliveryModule) },
  { service: "queue", variable: "QUEUE_DATABASE_URL", migrationsFolder: migrationsOf(queueModule) },
  {
    service: "federation",
    variable: "FEDERATION_DATABASE_URL",
    migrationsFolder: migrationsOf(federationGatewayModule),
  },
];

/** The migrations a module's runner applies to its database at start. */
function migrationsOf(module: AnyServiceModule): string {
  const folder = module.storage?.migrationsFolder;
  if (folder === undefined) throw new TypeError(`module ${module.name} declares no migrations`);
  return folder;
}

const postgresUrl = () => envUrl({ optional: true, protocols: ["postgres", "postgresql"] });

/** The environment of `migrate`: one optional Postgres URL per service database. */
export const migrateConfigSchema = z.object({
  AUTH_DATABASE_URL: postgresUrl(),
  DELIVERY_DATABASE_URL: postgresUrl(),
  QUEUE_DATABASE_URL: postgresUrl(),
  FEDERATION_DATABASE_URL: postgresUrl(),
});

/** `migrate` was given no database, or one of its migrations could not be applied. */
export class MigrateError extends Error {
  override readonly name = "MigrateError";
}

/** One database brought up to date. */
export interface MigratedDatabase {
  service: MigrationTarget["service"];
  variable: MigrationTarget["variable"];
  /** The URL without its password. */
  url: string;
}

/**
 * Applies the runtime's and each service's migrations to the databases named by
 * `AUTH_DATABASE_URL`, `DELIVERY_DATABASE_URL`, `QUEUE_DATABASE_URL` and `FEDERATION_DATABASE_URL`
 * (each optional, at least one), one after the other, exactly as the services do at start (under
 * the same advisory lock, so running it while services start is safe). Stops at the first failure
 * with a {@link MigrateError} naming the service and variable; a bad variable throws ConfigError.
 */
export async function migrateDatabases(
  env: Env,
  onMigrated: (done: MigratedDatabase) => void = () => {},
): Promise<MigratedDatabase[]> {
  const config = loadConfig(migrateConfigSchema, env);
  const targets = MIGRATION_TARGETS.filter((target) => config[target.variable] !== undefined);
  if (targets.length === 0) {
    const variables = MIGRATION_TARGETS.map((target) => target.variable).join(", ");
    throw new MigrateError(`no database to migrate: set at least one of ${variables}`);
  }
  const migrated: MigratedDatabase[] = [];
  for (const target of targets) {
    const url = config[target.variable] as string;
    try {
      const handle = await openDatabase({
        driver: "pg",
        url,
        poolMax: 1,
        applicationName: `migrate-${target.service}`,
        migrationsFolder: target.migrationsFolder,
      });
      await handle.close();
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new MigrateError(`${target.service} (${target.variable}): ${reason}`, { cause: error });
    }
    const done = { service: target.service, variable: target.variable, url: redactUrl(url) };
    migrated.push(done);
    onMigrated(done);
  }
  return migrated;
}
