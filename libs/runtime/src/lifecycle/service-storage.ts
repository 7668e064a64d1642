import { type BusConfig, openBus } from "../bus/config.js";
import type { Bus } from "../bus/types.js";
import type { BaseConfig } from "../config/index.js";
import { type DatabaseConfig, databaseConnectionFromConfig } from "../db/config.js";
import { type DatabaseHandle, openDatabase } from "../db/open-database.js";
import type { ServiceRuntime } from "./run-service.js";

/**
 * A service's database and bus; either may be handed in (tests, the all-in-one homeserver), as
 * any handle that has at least the `db` the service uses.
 */
export interface ServiceStorage<D extends Pick<DatabaseHandle, "db"> = DatabaseHandle> {
  database: D | DatabaseHandle;
  bus: Bus;
}

export interface OpenServiceStorageOptions {
  /** Database name used for PGlite's data directory (`$DATA_DIR/pglite/<name>`). */
  name: string;
  /** The service's drizzle migrations, applied at open (none: the runtime's own only). */
  migrationsFolder?: string;
}

/**
 * Opens the service's database (migrated) and its bus from config unless `given` has them, and
 * registers what it opened for shutdown (the bus closes before the database it may live in).
 * Handed-in resources stay the caller's to close.
 */
export async function openServiceStorage<
  C extends BaseConfig & DatabaseConfig & BusConfig,
  D extends Pick<DatabaseHandle, "db"> = DatabaseHandle,
>(
  runtime: ServiceRuntime<C>,
  options: OpenServiceStorageOptions,
  given: { database?: D; bus?: Bus } = {},
): Promise<ServiceStorage<D>> {
  const { config, logger, onShutdown } = runtime;
  let database: D | DatabaseHandle | undefined = given.database;
  if (database === undefined) {
    const opened = await openDatabase({
      ...databaseConnectionFromConfig(config, { name: options.name }),
      ...(options.migrationsFolder !== undefined ? { migrationsFolder: options.migrationsFolder } : {}),
    });
    onShutdown(opened, "database");
    database = opened;
  }
  let bus = given.bus;
  if (bus === undefined) {
    bus = await openBus(config, {
      name: config.SERVICE_NAME,
      db: database.db,
      onError: (err) => logger.warn({ err }, "bus"),
    });
    onShutdown(bus, "bus");
  }
  return { database, bus };
}
