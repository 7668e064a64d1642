// Wiring only: config → runService without a gRPC server (logger, metrics, signals) → the
// edge gateway's HTTP/WebSocket listener, closed on shutdown. Health is HTTP: /healthz, /readyz.
import { runService } from "@phoenix/runtime/lifecycle";
import { edgeGatewayConfig } from "./config.js";
import { startEdgeGateway } from "./gateway.js";

await runService({
  config: edgeGatewayConfig,
  grpc: false,
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
  },
});
