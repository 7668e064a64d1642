export { QUEUE_DELETED_SUBJECT } from "./api/queue-deleted.js";
export {
  DEFAULT_STATE_BUCKETS,
  type DeliveryConfig,
  deliveryConfigSchema,
  paddingBuckets,
} from "./config.js";
export { translateDeliveryError } from "./domain/errors.js";
export { FANOUT_SUBJECT } from "./domain/fan-out.js";
export {
  createDeliveryService,
  type DeliveryResources,
  DeliveryService,
  type DeliveryServiceOptions,
  type DeliverySetup,
  type RunningDelivery,
  type StartDeliveryOptions,
  setupDelivery,
  startDelivery,
} from "./service.js";
export { DELIVERY_MIGRATIONS } from "./store/migrations.js";
