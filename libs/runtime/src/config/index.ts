export {
  type BaseConfig,
  baseConfigSchema,
  LOG_LEVELS,
  type LogLevel,
  type ServiceConfigDefaults,
  serviceConfig,
} from "./base-config.js";
export {
  type EnvField,
  envAddressList,
  envBool,
  envBytes,
  envDuration,
  envEnum,
  envInt,
  envList,
  envPort,
  envSecretKey,
  envString,
  envUrl,
  type Presence,
} from "./fields.js";
export { ConfigError, type ConfigIssue, type Env, loadConfig } from "./load-config.js";
