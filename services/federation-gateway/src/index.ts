// @phoenix/federation-gateway: the federation gateway. `federationGatewayModule` is the service
// (main.ts runs it with runModule; the all-in-one homeserver embeds it with startModules).
export { type GatewayConfig, gatewayConfigSchema } from "./config.js";
export { federationGatewayModule } from "./module.js";
export { type FederationTls, loadTls } from "./outbound/tls.js";
export { GATEWAY_MIGRATIONS } from "./store/migrations.js";
