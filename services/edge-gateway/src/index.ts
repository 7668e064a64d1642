// @phoenix/edge-gateway: the REST/WebSocket front door of a homeserver, generated from the
// contracts. `startEdgeGateway` runs it in-process (tests, the all-in-one homeserver).

export { type EdgeGatewayConfig, edgeGatewayConfig } from "./config.js";
export { CLIENT_SERVICES, clientRpcs, SERVICE_PREFIX, type UpstreamName } from "./contracts.js";
export {
  DEFAULT_LIMITS,
  type EdgeGateway,
  type EdgeGatewayOptions,
  type GatewayLimits,
  startEdgeGateway,
} from "./gateway.js";
export { type ClientOrigin, clientOrigin, FORWARDED_FOR_KEY } from "./http/client-origin.js";
export { httpStatusOf } from "./http/status-mapping.js";
export { buildOpenApi } from "./openapi/openapi.js";
export type { UpstreamAddresses, UpstreamHealth } from "./upstream/upstreams.js";
export { closeCodeOf, streamPathOf } from "./ws/stream-bridge.js";
