// @phoenix/queue: the Queuing Service. `queueModule` is the service (main.ts runs it with
// runModule; the all-in-one homeserver and the test harness embed it with startModules).
export { type QueueConfig, queueConfigSchema } from "./config.js";
export { WebhookAddressPolicy, WebhookAllowlistError } from "./domain/webhook-address.js";
export { type QueueModuleExtras, queueModule, queueModuleWith } from "./module.js";
export {
  LoggingNotifier,
  type PushNotifier,
  type ResolvedAddress,
  systemResolver,
  WebhookNotifier,
  type WebhookNotifierOptions,
  WebhookRefusedError,
  type WebhookResolver,
} from "./push/notifier.js";
export { type QsStreams, QueueService, type QueueServiceHooks, type QueueServiceInit } from "./service.js";
export { loadStorageKey, QUEUE_MIGRATIONS, StorageKeyError } from "./setup.js";
export {
  type QueueResources,
  type QueueServer,
  type QueueServerOptions,
  setupQueue,
  startQueueServer,
} from "./shims.js";
