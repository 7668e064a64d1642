// @phoenix/delivery: the Delivery Service. `deliveryModule` is the service (main.ts runs it with
// runModule; the all-in-one homeserver and the test harness embed it with startModules).
export { type DeliveryConfig, deliveryConfigSchema } from "./config.js";
export { type DeliveryModuleExtras, deliveryModule, deliveryModuleWith } from "./module.js";
export { DELIVERY_MIGRATIONS } from "./store/migrations.js";
