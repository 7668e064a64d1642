// @phoenix/delivery: the Delivery Service. `deliveryModule` is the service (main.ts runs it with
// runModule; the all-in-one homeserver and the test harness embed it with startModules).
export {
  DEFAULT_STATE_BUCKETS,
  type DeliveryConfig,
  deliveryConfigSchema,
  paddingBuckets,
} from "./config.js";
export { translateDeliveryError } from "./domain/errors.js";
export { type DeliveryModuleExtras, deliveryModule, deliveryModuleWith } from "./module.js";
export { DeliveryService, type DeliveryServiceInit } from "./service.js";
export { type RunningDelivery, type StartDeliveryOptions, startDelivery } from "./shims.js";
export { DELIVERY_MIGRATIONS } from "./store/migrations.js";
