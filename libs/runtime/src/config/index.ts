export {
  type BaseConfig,
  baseConfigSchema,
  LOG_LEVELS,
  type LogLevel,
  type ServiceConfigDefaults,
  serviceConfig,
} from "./base-config.js";
export {
  DOMAIN_RULE,
  type EnvField,
  envAddressList,
  envBool,
  envBytes,
  envDomain,
  envDuration,
  envEnum,
  envInt,
  envList,
  envPort,
  envSecretKey,
  envString,
  envUrl,
  FQDN_RULE,
  isHomeserverDomain,
  type Presence,
} from "./fields.js";
export { ConfigError, type ConfigIssue, type Env, loadConfig } from "./load-config.js";
