export { QUEUE_DELETED_SUBJECT } from "./api/queue-deleted.js";
export {
  DEFAULT_STATE_BUCKETS,
  type DeliveryConfig,
  deliveryConfigSchema,
  paddingBuckets,
} from "./config.js";
export { FANOUT_SUBJECT } from "./domain/fan-out.js";
export {
  createDeliveryService,
  DeliveryService,
  type DeliveryServiceOptions,
  type RunningDelivery,
  startDelivery,
} from "./service.js";

import { fileURLToPath } from "node:url";

/** The DS's drizzle-kit migrations folder. */
export const DELIVERY_MIGRATIONS: string = fileURLToPath(new URL("../migrations", import.meta.url));
