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
export { type BusNames, busNames } from "./embedded-queue.js";
export {
  type HomeserverAddresses,
  type HomeserverSetup,
  type RunningHomeserver,
  type StartHomeserverOptions,
  setupHomeserver,
  startHomeserver,
} from "./homeserver.js";
export { KeyFileError, loadOrCreateKeyFile } from "./key-file.js";
