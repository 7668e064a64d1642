export {
  type CloseAllOptions,
  type Closeable,
  CloseTimeoutError,
  closeAll,
  type NamedCloseable,
} from "./closeables.js";
export {
  type RunningService,
  type RunServiceOptions,
  runService,
  type ServiceRuntime,
  type ServiceSetup,
  ServiceStartError,
} from "./run-service.js";
