// @phoenix/edge-gateway: the REST/WebSocket front door of a homeserver, generated from the
// contracts. `edgeGatewayModule` is the service module (main.ts, embedding runners);
// `startEdgeGateway` builds it in-process from explicit options (tests).

export { type EdgeGatewayConfig, edgeGatewayConfig } from "./config.js";
export { clientRpcs } from "./contracts.js";
export {
  DEFAULT_LIMITS,
  EDGE_TLS_MIN_VERSION,
  type EdgeGateway,
  type EdgeGatewayOptions,
  type EdgeTls,
  type GatewayLimits,
  startEdgeGateway,
} from "./gateway.js";
export { httpStatusOf } from "./http/status-mapping.js";
export { EdgeTlsConfigError, edgeGatewayModule, edgeGatewayOptions, loadEdgeTls } from "./module.js";
