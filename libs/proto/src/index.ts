// @phoenix/proto: the gRPC SDK generated from proto/ (ts-proto: grpc-js servers, nice-grpc
// promise clients) plus the few helpers every caller of the contracts needs. The generated code
// lives in ./gen and is never edited.
export * from "./clients.js";
export * from "./descriptors.js";
export * from "./error-detail.js";
export * as googleRpc from "./gen/google/rpc/status.js";
export * as admin from "./gen/phoenix/admin/v1/admin.js";
export * as federationAdmin from "./gen/phoenix/admin/v1/federation_admin.js";
export * as queueAdmin from "./gen/phoenix/admin/v1/queue_admin.js";
export * as auth from "./gen/phoenix/auth/v1/auth.js";
export * as common from "./gen/phoenix/common/v1/common.js";
export * as delivery from "./gen/phoenix/delivery/v1/delivery.js";
export * as events from "./gen/phoenix/events/v1/events.js";
export * as federation from "./gen/phoenix/federation/v1/federation.js";
export * as queue from "./gen/phoenix/queue/v1/queue.js";
export * from "./signing.js";
