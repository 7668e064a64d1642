// @phoenix/queue: the Queuing Service. `main.ts` runs it as a process; the all-in-one
// homeserver and tests build it in-process with `startQueueServer` / `QueueService.create`.
export { type QueueConfig, queueConfigSchema } from "./config.js";
export {
  LoggingNotifier,
  type PushNotifier,
  WebhookNotifier,
  type WebhookNotifierOptions,
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
