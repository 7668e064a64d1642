// @phoenix/homeserver: the all-in-one homeserver. `main.ts` runs it as a process; tools and tests
// embed it with `startHomeserver`.
export { type HomeserverConfig, homeserverConfigSchema } from "./config.js";
export {
  type HomeserverAddresses,
  type LogDestination,
  type RunningHomeserver,
  type StartHomeserverOptions,
  startHomeserver,
} from "./homeserver.js";
export { migrateConfigSchema } from "./migrate.js";
