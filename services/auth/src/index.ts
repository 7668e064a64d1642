// @phoenix/auth: the Authentication Service. `authModule` is the service (main.ts runs it with
// runModule; the all-in-one homeserver and the test harness embed it with startModules).

export { type AdminCliIo, runAdminCli } from "./admin/cli/cli.js";
export {
  DATA_DIR_ADMIN_ADDRESS,
  DATA_DIR_OPERATOR_KEY,
  loadOrCreateOperatorKey,
  type OperatorKey,
  OperatorKeyFileError,
  operatorKeyEntry,
  readOperatorKeyFile,
  writeOperatorKeyFile,
} from "./admin/operator-key-file.js";
export { type AuthConfig, authConfigSchema } from "./config.js";
export { type AuthModuleExtras, authModule, authModuleWith } from "./module.js";
export { authMigrationsFolder } from "./service.js";
