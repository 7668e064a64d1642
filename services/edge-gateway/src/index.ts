// @phoenix/edge-gateway: the REST/WebSocket front door of a homeserver, generated from the
// contracts. `edgeGatewayModule` is the service module (main.ts, embedding runners);
// `startEdgeGateway` builds it in-process from explicit options (tests).

export { type EdgeGatewayConfig, edgeGatewayConfig } from "./config.js";
export { CLIENT_SERVICES, clientRpcs, SERVICE_PREFIX, type UpstreamName } from "./contracts.js";
export {
  DEFAULT_LIMITS,
  type EdgeGateway,
  type EdgeGatewayOptions,
  type GatewayLimits,
  type GatewayLimitsConfig,
  gatewayLimitsOf,
  startEdgeGateway,
} from "./gateway.js";
export { type ClientOrigin, clientOrigin, FORWARDED_FOR_KEY } from "./http/client-origin.js";
export { httpStatusOf } from "./http/status-mapping.js";
export { edgeGatewayModule, edgeGatewayOptions } from "./module.js";
export { buildOpenApi } from "./openapi/openapi.js";
export type { UpstreamAddresses, UpstreamHealth } from "./upstream/upstreams.js";
export { closeCodeOf, streamPathOf } from "./ws/stream-bridge.js";
