// @phoenix/queue: the Queuing Service. `main.ts` runs it as a process; the all-in-one
// homeserver and tests build it in-process with `startQueueServer` / `QueueService.create`.
export { type QueueConfig, queueConfigSchema } from "./config.js";
export { WebhookAddressPolicy, WebhookAllowlistError } from "./domain/webhook-address.js";
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
export {
  type QsRateLimitOptions,
  type QsStreams,
  type QueueServer,
  QueueService,
  type QueueServiceOptions,
  startQueueServer,
} from "./service.js";
export {
  loadStorageKey,
  QUEUE_MIGRATIONS,
  type QueueResources,
  StorageKeyError,
  setupQueue,
} from "./setup.js";
