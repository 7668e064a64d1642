// @phoenix/homeserver: the all-in-one homeserver. `main.ts` runs it as a process; tools and tests
// embed it with `startHomeserver`.
export {
  type CommandLine,
  CommandLineError,
  HELP,
  type HomeserverConfig,
  homeserverConfigSchema,
  parseCommandLine,
} from "./config.js";
export {
  type DatabaseName,
  ensurePostgresDatabase,
  type StorageLocation,
  serviceDatabase,
} from "./databases.js";
export {
  type HomeserverAddresses,
  type HomeserverSetup,
  type LogDestination,
  type RunningHomeserver,
  type StartHomeserverOptions,
  setupHomeserver,
  startHomeserver,
} from "./homeserver.js";
export { KeyFileError, loadOrCreateKeyFile } from "./key-file.js";
export {
  MIGRATION_TARGETS,
  type MigratedDatabase,
  MigrateError,
  type MigrationTarget,
  migrateConfigSchema,
  migrateDatabases,
} from "./migrate.js";
