// @phoenix/auth: the Authentication Service. `authModule` is the service (main.ts runs it with
// runModule; the all-in-one homeserver and the test harness embed it with startModules).
export { type AuthConfig, authConfigSchema } from "./config.js";
export { type AuthModuleExtras, authModule, authModuleWith } from "./module.js";
export { authMigrationsFolder } from "./service.js";
