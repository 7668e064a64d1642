export {
  type AdminListenerConfig,
  type AdminListenerSetup,
  adminListenerConfig,
  authenticateOperator,
  OperatorKeyConfigError,
  type OperatorSigner,
  type OperatorTbs,
  parseOperatorKeys,
  startAdminListener,
} from "./admin-listener.js";
export { moduleEnv } from "./module-env.js";
export { asOperator, type OperatorCallContext, type OperatorRequest } from "./operator-call.js";
export {
  type ModuleEntry,
  ModuleStartError,
  ModuleStopError,
  type RunModuleOptions,
  type RunningModule,
  type RunningModules,
  runModule,
  type StartModulesOptions,
  startModules,
  withOverrides,
} from "./run-module.js";
export {
  type AnyServiceModule,
  defineServiceModule,
  type EmbedSettings,
  type ModuleHost,
  type ModuleInstance,
  type ModuleResources,
  type ModuleStorage,
  type ModuleStorageOf,
  type ServiceModule,
} from "./service-module.js";
export {
  consumerWorker,
  type IntervalWorkerOptions,
  intervalWorker,
  type LeaderWorkerOptions,
  leaderWorker,
  outboxRelayWorker,
  type Worker,
} from "./worker.js";
