// The whole runtime; each concern is also importable on its own (e.g. `@phoenix/runtime/bus`).
// Test helpers stay out of this barrel: import them from `@phoenix/runtime/testing`.
export * from "./bus/index.js";
export * from "./config/index.js";
export * from "./db/index.js";
export * from "./errors/index.js";
export * from "./federation/index.js";
export * from "./grpc/index.js";
export * from "./health/index.js";
export * from "./lifecycle/index.js";
export * from "./log/index.js";
export * from "./metrics/index.js";
export * from "./module/index.js";
export * from "./outbox/index.js";
export * from "./rate-limit/index.js";
export * from "./replay/index.js";
export * from "./signed-request/index.js";
