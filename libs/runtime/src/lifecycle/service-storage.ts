import { sql } from "drizzle-orm";
import { type BusConfig, openBus } from "../bus/config.js";
import type { Bus } from "../bus/types.js";
import type { BaseConfig } from "../config/index.js";
import { type DatabaseConfig, databaseConnectionFromConfig } from "../db/config.js";
import { type DatabaseHandle, openDatabase } from "../db/open-database.js";
import { retryWithBackoff } from "../health/backoff.js";
import { unreachableDependency } from "../health/unavailable.js";
import { type DependencyWatch, watchDependency } from "../health/watch.js";
import { registerBusMetrics, registerPoolMetrics } from "../metrics/operational-metrics.js";
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
 * Handed-in resources stay the caller's to close. A Postgres server or NATS that cannot be
 * reached yet is waited for (retried with backoff, each attempt logged); once open, both are
 * watched and feed the process's readiness (see {@link openWatchedDatabase}).
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
  const database: D | DatabaseHandle = given.database ?? (await openWatchedDatabase(runtime, options));
  let bus = given.bus;
  if (bus === undefined) {
    const open = () =>
      openBus(config, {
        name: config.SERVICE_NAME,
        db: database.db,
        onError: (err) => logger.warn({ err }, "bus"),
      });
    // Only NATS can be out of reach; the embedded bus lives in the database just opened.
    bus = config.NATS_URL
      ? await retryWithBackoff(open, { dependency: "bus", logger, retryable: isUnreachable })
      : await open();
    onShutdown(bus, "bus");
    registerBusMetrics(runtime.metrics.registry, bus);
    const watch = bus.watchConnection;
    if (watch) {
      const dependency = runtime.readiness.dependency("bus");
      const stop = watch.call(bus, (state) => {
        if (state.connected === dependency.state.up) return;
        if (state.connected) {
          dependency.up();
          logger.info({ dependency: "bus" }, "bus is back: ready");
        } else {
          const reason = state.reason ?? "disconnected";
          dependency.down(reason);
          logger.warn({ dependency: "bus", error: reason }, "bus lost: not ready until it is back");
        }
      });
      // Registered after the bus, so it stops listening before the bus closes.
      onShutdown(stop, "bus watch");
    }
  }
  return { database, bus };
}

/**
 * Opens the service's database from config. On Postgres, a server that cannot be reached (or
 * is still starting) is retried with backoff until it answers — the process waits instead of
 * exiting, `/readyz` says why — then the pool is watched (`SELECT 1` every 2 s, and at once on a
 * pool error): the `database` dependency of the process's readiness goes down while it does not
 * answer and up when it does again. PGlite is in-process and opened once, as before.
 */
export async function openWatchedDatabase<C extends BaseConfig & DatabaseConfig>(
  runtime: ServiceRuntime<C>,
  options: OpenServiceStorageOptions,
): Promise<DatabaseHandle> {
  const { config, logger, onShutdown } = runtime;
  const connection = databaseConnectionFromConfig(config, { name: options.name });
  const migrations =
    options.migrationsFolder !== undefined ? { migrationsFolder: options.migrationsFolder } : {};
  if (connection.driver !== "pg") {
    const opened = await openDatabase({ ...connection, ...migrations });
    onShutdown(opened, "database");
    return opened;
  }
  const dependency = runtime.readiness.dependency("database");
  let watch: DependencyWatch | undefined;
  const opened = await retryWithBackoff(
    () =>
      openDatabase({
        ...connection,
        ...migrations,
        applicationName: config.SERVICE_NAME,
        onPoolError: (error) => watch?.failed(error),
      }),
    { dependency: "database", logger, retryable: isUnreachable },
  );
  onShutdown(opened, "database");
  if (opened.poolStats) registerPoolMetrics(runtime.metrics.registry, opened.poolStats.bind(opened));
  watch = watchDependency({
    dependency,
    logger,
    probe: async () => {
      await opened.db.execute(sql`select 1`);
    },
  });
  // Registered after the database, so the probes stop before the pool closes.
  onShutdown(watch, "database watch");
  return opened;
}

/** Errors worth waiting out at start: the server is not there (yet), not a bad migration. */
function isUnreachable(error: unknown): boolean {
  return unreachableDependency(error) !== undefined;
}
