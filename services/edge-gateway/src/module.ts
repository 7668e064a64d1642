import { defineServiceModule } from "@phoenix/runtime/module";
import { type EdgeGatewayConfig, edgeGatewayConfig } from "./config.js";
import { type EdgeGatewayOptions, gatewayLimitsOf, startEdgeGateway } from "./gateway.js";

/** The listener, upstreams and limits a parsed config sets (logger and metrics come from the host). */
export function edgeGatewayOptions(config: EdgeGatewayConfig): EdgeGatewayOptions {
  return {
    host: config.HTTP_HOST,
    port: config.HTTP_PORT,
    upstreams: {
      auth: config.AUTH_SERVICE_ADDRESS,
      delivery: config.DELIVERY_SERVICE_ADDRESS,
      queue: config.QUEUE_SERVICE_ADDRESS,
    },
    limits: gatewayLimitsOf(config),
    trustProxy: config.EDGE_TRUST_PROXY,
    corsAllowedOrigins: config.EDGE_CORS_ALLOWED_ORIGINS,
  };
}

/**
 * The edge gateway as a service module: an HTTP/WebSocket front door with no gRPC server of its
 * own (health is HTTP: /healthz, /readyz). Embedded, it forwards to the AS, DS and QS started
 * before it and publishes its base URL as `http`.
 */
export const edgeGatewayModule = defineServiceModule({
  name: "edge-gateway",
  config: edgeGatewayConfig,
  grpc: false,
  embed: ({ addresses }) => ({
    AUTH_SERVICE_ADDRESS: addresses.auth,
    DELIVERY_SERVICE_ADDRESS: addresses.delivery,
    QUEUE_SERVICE_ADDRESS: addresses.queue,
  }),
  async create({ config, logger, metrics, readiness, onShutdown }) {
    const gateway = await startEdgeGateway({ ...edgeGatewayOptions(config), logger, metrics, readiness });
    onShutdown(gateway, "edge gateway");
    return { gateway, addresses: { http: gateway.url } };
  },
});
