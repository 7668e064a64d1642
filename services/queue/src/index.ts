// @phoenix/queue: the Queuing Service. `queueModule` is the service (main.ts runs it with
// runModule; the all-in-one homeserver and the test harness embed it with startModules).
export { type QueueConfig, queueConfigSchema } from "./config.js";
export { type QueueModuleExtras, queueModule, queueModuleWith } from "./module.js";
export type { PushNotifier } from "./push/notifier.js";
export type { QueueServiceHooks } from "./service.js";
