export {
  DEFAULT_STATE_BUCKETS,
  type DeliveryConfig,
  deliveryConfigSchema,
  paddingBuckets,
} from "./config.js";
export { translateDeliveryError } from "./domain/errors.js";
export {
  createDeliveryService,
  type DeliveryResources,
  DeliveryService,
  type DeliveryServiceOptions,
  type DeliverySettings,
  type DeliverySetup,
  type RunningDelivery,
  type StartDeliveryOptions,
  setupDelivery,
  startDelivery,
} from "./service.js";
export { DELIVERY_MIGRATIONS } from "./store/migrations.js";
