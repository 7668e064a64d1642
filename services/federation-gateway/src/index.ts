export { translateGatewayError } from "./api/translate-error.js";
export { type GatewayConfig, gatewayConfigSchema } from "./config.js";
export { PeerResolver, type PeerResolverOptions } from "./discovery/resolver.js";
export * from "./domain/errors.js";
export { type PeerAddress, parseStaticPeers } from "./domain/peers.js";
export { FederationGateway, type FederationGatewayOptions, type GatewayStreams } from "./gateway.js";
export { type FederationTls, isLoopbackHost, loadTls } from "./outbound/tls.js";
export { ORIGIN_DOMAIN_KEY } from "./outbound/upstream.js";
export {
  type GatewayResources,
  type GatewaySetup,
  type RunningGateway,
  type StartGatewayOptions,
  setupFederationGateway,
  startFederationGateway,
} from "./setup.js";
export { GATEWAY_MIGRATIONS } from "./store/migrations.js";
