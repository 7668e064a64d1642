export {
  HarnessSetupError,
  type Homeserver,
  type HomeserverAddresses,
  type HomeserverOptions,
  type LogLevel,
  startHomeserver,
} from "./homeserver.js";
