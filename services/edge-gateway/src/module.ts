import { readFileSync } from "node:fs";
import { defineServiceModule } from "@phoenix/runtime/module";
import { type EdgeGatewayConfig, edgeGatewayConfig } from "./config.js";
import { type EdgeGatewayOptions, type EdgeTls, gatewayLimitsOf, startEdgeGateway } from "./gateway.js";

/** EDGE_TLS_CERT_FILE / EDGE_TLS_KEY_FILE set alone, or naming a file that cannot be read. */
export class EdgeTlsConfigError extends Error {
  override readonly name = "EdgeTlsConfigError";
}

/** The listener's certificate and key from EDGE_TLS_CERT_FILE / EDGE_TLS_KEY_FILE; undefined: plain HTTP. */
export function loadEdgeTls(
  config: Pick<EdgeGatewayConfig, "EDGE_TLS_CERT_FILE" | "EDGE_TLS_KEY_FILE">,
): EdgeTls | undefined {
  const { EDGE_TLS_CERT_FILE: certFile, EDGE_TLS_KEY_FILE: keyFile } = config;
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined || keyFile === undefined) {
    throw new EdgeTlsConfigError("EDGE_TLS_CERT_FILE and EDGE_TLS_KEY_FILE go together: set both or neither");
  }
  const read = (path: string, variable: string) => {
    try {
      return new Uint8Array(readFileSync(path));
    } catch {
      throw new EdgeTlsConfigError(`cannot read ${variable} (${path})`);
    }
  };
  return { cert: read(certFile, "EDGE_TLS_CERT_FILE"), key: read(keyFile, "EDGE_TLS_KEY_FILE") };
}

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
    tls: loadEdgeTls(config),
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
