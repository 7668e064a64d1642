export {
  type CloseAllOptions,
  type Closeable,
  CloseTimeoutError,
  closeAll,
  type NamedCloseable,
} from "./closeables.js";
export {
  type RunningProcess,
  type RunningService,
  type RunServiceCommonOptions,
  type RunServiceOptions,
  type RunServiceWithoutGrpcOptions,
  runService,
  type ServiceRuntime,
  type ServiceSetup,
  ServiceStartError,
} from "./run-service.js";
export {
  type OpenServiceStorageOptions,
  openServiceStorage,
  openWatchedDatabase,
  type ServiceStorage,
} from "./service-storage.js";
