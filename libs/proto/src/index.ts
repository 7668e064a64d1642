export * as auth from "./gen/phoenix/auth/v1/auth.js";
export * as common from "./gen/phoenix/common/v1/common.js";
export * as delivery from "./gen/phoenix/delivery/v1/delivery.js";
export * as events from "./gen/phoenix/events/v1/events.js";
export * as federation from "./gen/phoenix/federation/v1/federation.js";
export * as queue from "./gen/phoenix/queue/v1/queue.js";
