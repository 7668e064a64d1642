export * as common from "./gen/phoenix/common/v1/common.js";
export * as auth from "./gen/phoenix/auth/v1/auth.js";
export * as delivery from "./gen/phoenix/delivery/v1/delivery.js";
export * as queue from "./gen/phoenix/queue/v1/queue.js";
