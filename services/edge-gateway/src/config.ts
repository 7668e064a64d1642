import {
  envBool,
  envBytes,
  envDuration,
  envInt,
  envList,
  envPort,
  envString,
  serviceConfig,
} from "@phoenix/runtime/config";
import type { z } from "zod";
import { CorsConfigError, normalizeAllowedOrigins } from "./http/cors.js";

const address = (hint: string) =>
  envString({
    pattern: /^[A-Za-z0-9.[\]:_-]+:\d{1,5}$/,
    patternHint: `must be host:port of the ${hint}`,
  });

/**
 * The gateway's environment: the runtime's service fields (it runs no gRPC server, so only
 * `GRPC_MAX_MESSAGE_BYTES` of the `GRPC_*` ones matters: the upstream message limit) plus the
 * HTTP listener, the upstream addresses and the limits.
 */
export const edgeGatewayConfig = serviceConfig({
  serviceName: "edge-gateway",
  metricsPort: 9460,
}).extend({
  HTTP_HOST: envString({ default: "127.0.0.1" }),
  HTTP_PORT: envPort({ default: 8080 }),
  /**
   * PEM certificate chain and key: the listener serves HTTPS (and WSS), TLS 1.3 only. Both or
   * neither; unset: plain HTTP, for a gateway behind a TLS-terminating ingress or on loopback.
   */
  EDGE_TLS_CERT_FILE: envString({ optional: true }),
  EDGE_TLS_KEY_FILE: envString({ optional: true }),
  AUTH_SERVICE_ADDRESS: address("Authentication Service"),
  DELIVERY_SERVICE_ADDRESS: address("Delivery Service"),
  QUEUE_SERVICE_ADDRESS: address("Queuing Service"),
  /** Largest request body / WebSocket frame. */
  EDGE_MAX_BODY_BYTES: envBytes({ default: 1024 * 1024, min: 1024, max: 64 * 1024 * 1024 }),
  /** Per client IP: sustained requests per second and burst size. */
  EDGE_RATE_LIMIT_PER_SECOND: envInt({ default: 50, min: 1 }),
  EDGE_RATE_LIMIT_BURST: envInt({ default: 100, min: 1 }),
  /** Upstream deadline of a request without a `grpc-timeout` header, and the cap of one with it. */
  EDGE_DEFAULT_DEADLINE_MS: envDuration({ default: 10_000, min: 1 }),
  EDGE_MAX_DEADLINE_MS: envDuration({ default: 60_000, min: 1 }),
  /** WebSocket ping interval; a peer that misses one ping is closed. */
  EDGE_WS_HEARTBEAT_MS: envDuration({ default: 30_000, min: 100 }),
  /** HTTP/2 keep-alive ping interval on the upstream gRPC connections. */
  EDGE_UPSTREAM_KEEPALIVE_MS: envDuration({ default: 30_000, min: 1000 }),
  /** Take the client address from the first X-Forwarded-For entry (only behind a trusted proxy). */
  EDGE_TRUST_PROXY: envBool({ default: false }),
  /**
   * Origins of browser apps allowed to call the API (CORS) and open its WebSockets: a comma list
   * of `scheme://host[:port]`, or `*` alone for any origin. Empty (default): no CORS headers.
   */
  EDGE_CORS_ALLOWED_ORIGINS: envList({ default: [] }).transform((entries, ctx) => {
    try {
      return normalizeAllowedOrigins(entries);
    } catch (error) {
      if (!(error instanceof CorsConfigError)) throw error;
      ctx.addIssue({ code: "custom", message: error.message });
      return [];
    }
  }),
});

export type EdgeGatewayConfig = z.output<typeof edgeGatewayConfig>;
