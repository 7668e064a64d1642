// @phoenix/auth: the Authentication Service, for running in process (tests, all-in-one homeserver).
export { AsKeyring, type PublicAsCredentials } from "./as-keyring.js";
export { type AuthConfig, authConfigSchema, loadAuthConfig } from "./config.js";
export { AsKeyConfigError } from "./domain/as-keys.js";
export { validateHandle } from "./domain/handles.js";
export { connectionQueueContext } from "./domain/ids.js";
export { InviteCodeConfigError } from "./domain/invite-codes.js";
export { ExpiryJob, type ExpiryReport, runExpiry } from "./expiry.js";
export { type AuthModuleExtras, authModule, authModuleWith } from "./module.js";
export {
  type AuthService,
  type AuthServiceOptions,
  authMigrationsFolder,
  createAuthService,
} from "./service.js";
