// Wiring only: config → runService (logger, metrics, the runtime's gRPC health port) → the
// edge gateway's HTTP/WebSocket listener, closed on shutdown.
import { runService } from "@phoenix/runtime/lifecycle";
import { edgeGatewayConfig } from "./config.js";
import { startEdgeGateway } from "./gateway.js";

await runService({
  config: edgeGatewayConfig,
  async setup({ config, logger, metrics, onShutdown }) {
    const gateway = await startEdgeGateway({
      host: config.HTTP_HOST,
      port: config.HTTP_PORT,
      upstreams: {
        auth: config.AUTH_SERVICE_ADDRESS,
        delivery: config.DELIVERY_SERVICE_ADDRESS,
        queue: config.QUEUE_SERVICE_ADDRESS,
      },
      limits: {
        maxBodyBytes: config.EDGE_MAX_BODY_BYTES,
        maxMessageBytes: config.GRPC_MAX_MESSAGE_BYTES,
        defaultDeadlineMs: config.EDGE_DEFAULT_DEADLINE_MS,
        maxDeadlineMs: config.EDGE_MAX_DEADLINE_MS,
        rateLimitPerSecond: config.EDGE_RATE_LIMIT_PER_SECOND,
        rateLimitBurst: config.EDGE_RATE_LIMIT_BURST,
        heartbeatMs: config.EDGE_WS_HEARTBEAT_MS,
        upstreamKeepaliveMs: config.EDGE_UPSTREAM_KEEPALIVE_MS,
      },
      trustProxy: config.EDGE_TRUST_PROXY,
      logger,
      metrics,
    });
    onShutdown(gateway, "edge gateway");
    // The gateway serves no gRPC API of its own: its gRPC port answers grpc.health.v1 only.
    return { services: [] };
  },
});
