import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import { status as grpcStatus } from "@grpc/grpc-js";
import type { RpcInfo } from "@phoenix/proto";
import { loadConfig } from "@phoenix/runtime/config";
import { Readiness } from "@phoenix/runtime/health";
import { createLogger, type Logger } from "@phoenix/runtime/log";
import { createMetrics, type Metrics } from "@phoenix/runtime/metrics";
import { TokenBucketLimiter } from "@phoenix/runtime/rate-limit";
import { type EdgeGatewayConfig, edgeGatewayConfig } from "./config.js";
import { clientRpcs } from "./contracts.js";
import { clientOrigin } from "./http/client-origin.js";
import { encodeStatus } from "./http/codec.js";
import { CorsPolicy } from "./http/cors.js";
import { GatewayMetrics } from "./http/http-metrics.js";
import { createRestHandler, type RestLimits } from "./http/rest-handler.js";
import { buildRestRoutes, type RestRoute } from "./http/routes.js";
import { buildOpenApi } from "./openapi/openapi.js";
import { type UpstreamAddresses, type UpstreamHealth, Upstreams } from "./upstream/upstreams.js";
import { buildStreamRoutes, StreamBridge, type StreamRoute } from "./ws/stream-bridge.js";

/** Limits of the gateway; every field has a default ({@link DEFAULT_LIMITS}). */
export interface GatewayLimits extends RestLimits {
  /** Per client IP token bucket. */
  rateLimitPerSecond: number;
  rateLimitBurst: number;
  /** WebSocket ping interval. */
  heartbeatMs: number;
  /** Upstream HTTP/2 keep-alive ping interval. */
  upstreamKeepaliveMs: number;
  /** Largest upstream gRPC message. */
  maxMessageBytes: number;
  /** Deadline of each upstream health check behind `/readyz`. */
  readinessTimeoutMs: number;
}

/** The config keys that set the limits. */
const LIMIT_KEYS = {
  EDGE_MAX_BODY_BYTES: true,
  GRPC_MAX_MESSAGE_BYTES: true,
  EDGE_DEFAULT_DEADLINE_MS: true,
  EDGE_MAX_DEADLINE_MS: true,
  EDGE_RATE_LIMIT_PER_SECOND: true,
  EDGE_RATE_LIMIT_BURST: true,
  EDGE_WS_HEARTBEAT_MS: true,
  EDGE_UPSTREAM_KEEPALIVE_MS: true,
} as const;

/** The part of the gateway's config that sets its limits. */
export type GatewayLimitsConfig = Pick<EdgeGatewayConfig, keyof typeof LIMIT_KEYS>;

/** Deadline of each upstream health check behind `/readyz` (not configurable). */
const READINESS_TIMEOUT_MS = 2000;

/** The limits a parsed config sets. */
export function gatewayLimitsOf(config: GatewayLimitsConfig): GatewayLimits {
  return {
    maxBodyBytes: config.EDGE_MAX_BODY_BYTES,
    maxMessageBytes: config.GRPC_MAX_MESSAGE_BYTES,
    defaultDeadlineMs: config.EDGE_DEFAULT_DEADLINE_MS,
    maxDeadlineMs: config.EDGE_MAX_DEADLINE_MS,
    rateLimitPerSecond: config.EDGE_RATE_LIMIT_PER_SECOND,
    rateLimitBurst: config.EDGE_RATE_LIMIT_BURST,
    heartbeatMs: config.EDGE_WS_HEARTBEAT_MS,
    upstreamKeepaliveMs: config.EDGE_UPSTREAM_KEEPALIVE_MS,
    readinessTimeoutMs: READINESS_TIMEOUT_MS,
  };
}

/** The limits of an unset environment: the defaults live in the config schema only. */
export const DEFAULT_LIMITS: GatewayLimits = gatewayLimitsOf(
  loadConfig(edgeGatewayConfig.pick(LIMIT_KEYS), {}),
);

export interface EdgeGatewayOptions {
  /** `host:port` of the AS, DS and QS. */
  upstreams: UpstreamAddresses;
  /** Listen address (default 127.0.0.1, port 0 = any free port). */
  host?: string;
  port?: number;
  limits?: Partial<GatewayLimits>;
  /**
   * The gateway sits behind one proxy that appends the client address to X-Forwarded-For: take
   * the client address from its rightmost entry and pass the incoming chain on upstream. Off
   * (default): the TCP peer is the client and an incoming X-Forwarded-For is discarded.
   */
  trustProxy?: boolean;
  /**
   * Origins of browser apps allowed to call the API across origins (CORS) and to open its
   * WebSockets: `scheme://host[:port]` entries, or `["*"]` for any. Empty (default): CORS is off,
   * no CORS header is sent, and only pages of the gateway's own origin may open a WebSocket.
   */
  corsAllowedOrigins?: readonly string[];
  logger?: Logger;
  /** Where the per-route metrics go (default: a fresh registry). */
  metrics?: Metrics;
  /**
   * The process's readiness (the runner's, also served on the metrics port): the gateway adds
   * its upstream check to it, and `/readyz` answers from it. Default: one of its own, started.
   */
  readiness?: Readiness;
  /** The RPCs to expose (default: every client-facing RPC of `rpcCatalog()`). */
  rpcs?: readonly RpcInfo[];
  /** Serve HTTPS/WSS (TLS 1.3 only) with this identity; undefined (default): plain HTTP. */
  tls?: EdgeTls | undefined;
}

/** The listener's TLS identity (PEM certificate chain and private key). */
export interface EdgeTls {
  cert: Uint8Array;
  key: Uint8Array;
}

/**
 * The lowest TLS version the listener accepts. TLS 1.3 alone: every client library this API is
 * meant for speaks it, and it drops the weak 1.2 cipher suites and renegotiation.
 */
export const EDGE_TLS_MIN_VERSION = "TLSv1.3";

/** A running gateway. */
export interface EdgeGateway {
  readonly port: number;
  /** `http://host:port`, or `https://host:port` with TLS. */
  readonly url: string;
  readonly restRoutes: readonly RestRoute[];
  readonly streamRoutes: readonly StreamRoute[];
  readonly metrics: Metrics;
  /** What `/readyz` answers from: the process's readiness plus the upstreams' health (`upstreams`). */
  readonly readiness: Readiness;
  /** Stops accepting, closes open streams (1001), waits for requests in flight, closes the upstream channels. */
  close(): Promise<void>;
}

/**
 * Starts the edge gateway in-process: REST routes and WebSocket streams generated from the
 * contracts, forwarded to the given upstream addresses. For `main.ts`, tests and the all-in-one
 * homeserver.
 */
export async function startEdgeGateway(options: EdgeGatewayOptions): Promise<EdgeGateway> {
  const limits: GatewayLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const logger = options.logger ?? createLogger({ service: "edge-gateway", level: "silent" });
  const metrics = options.metrics ?? createMetrics({ service: "edge-gateway", defaultMetrics: false });
  const gatewayMetrics = new GatewayMetrics(metrics.registry);
  const rpcs = clientRpcs(options.rpcs);
  const restRoutes = buildRestRoutes(rpcs);
  const streamRoutes = buildStreamRoutes(rpcs);
  const upstreams = new Upstreams({
    addresses: options.upstreams,
    rpcs,
    maxMessageBytes: limits.maxMessageBytes,
    keepaliveMs: limits.upstreamKeepaliveMs,
  });
  // EDGE_RATE_LIMIT_BURST tokens per client address, refilled at EDGE_RATE_LIMIT_PER_SECOND.
  const burst = Math.max(1, limits.rateLimitBurst);
  const rateLimiter = new TokenBucketLimiter({
    capacity: burst,
    periodMs: (burst / limits.rateLimitPerSecond) * 1000,
  });
  const originOf = (req: IncomingMessage) => clientOrigin(req, options.trustProxy === true);
  const cors = new CorsPolicy(
    options.corsAllowedOrigins ?? [],
    restRoutes.map((route) => route.httpMethod),
  );
  let openApiText: string | undefined;
  const readiness = options.readiness ?? startedReadiness();
  // Ready only while every upstream answers SERVING: the gateway only proxies.
  readiness.addCheck("upstreams", async () => {
    const health: UpstreamHealth = await upstreams.health(limits.readinessTimeoutMs);
    return { ready: Object.values(health).every((s) => s === "SERVING"), detail: health };
  });

  const handler = createRestHandler({
    routes: restRoutes,
    upstreams,
    limits,
    rateLimiter,
    metrics: gatewayMetrics,
    logger,
    clientOrigin: originOf,
    endpoints: {
      readiness,
      openApi() {
        openApiText ??= JSON.stringify(buildOpenApi({ restRoutes, streamRoutes }));
        return openApiText;
      },
    },
  });
  const bridge = new StreamBridge({
    routes: streamRoutes,
    upstreams,
    rateLimiter,
    metrics: gatewayMetrics,
    logger,
    maxFrameBytes: limits.maxBodyBytes,
    heartbeatMs: limits.heartbeatMs,
    clientOrigin: originOf,
    allowsUpgrade: (req) => cors.allowsUpgrade(req),
  });

  const serve = (req: IncomingMessage, res: ServerResponse) => {
    if (cors.handle(req, res)) return;
    void handler(req, res);
  };
  const requestTimeout = limits.maxDeadlineMs + 30_000;
  // An https.Server is an http.Server underneath (same request, upgrade and close handling).
  const server: Server = options.tls
    ? createHttpsServer(
        {
          requestTimeout,
          cert: Buffer.from(options.tls.cert),
          key: Buffer.from(options.tls.key),
          minVersion: EDGE_TLS_MIN_VERSION,
        },
        serve,
      )
    : createServer({ requestTimeout }, serve);
  server.on("upgrade", (req, socket, head) => bridge.handleUpgrade(req, socket, head));
  server.on("clientError", (error: NodeJS.ErrnoException, socket: Duplex) =>
    answerClientError(error, socket),
  );
  const sockets = new Set<Socket>();
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });

  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  logger.info(
    { host, port, tls: options.tls !== undefined, routes: restRoutes.length, streams: streamRoutes.length },
    "edge gateway listening",
  );

  let closing: Promise<void> | undefined;
  return {
    port,
    url: `${options.tls ? "https" : "http"}://${host.includes(":") ? `[${host}]` : host}:${port}`,
    restRoutes,
    streamRoutes,
    metrics,
    readiness,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        await bridge.close();
        // Requests in flight finish (bounded by their deadlines); then anything left is cut.
        const deadline = setTimeout(() => {
          for (const socket of sockets) socket.destroy();
        }, limits.maxDeadlineMs);
        await closed;
        clearTimeout(deadline);
        upstreams.close();
        logger.info("edge gateway closed");
      })();
      return closing;
    },
  };
}

/** A readiness for a gateway started on its own (tests): it serves as soon as it listens. */
function startedReadiness(): Readiness {
  const readiness = new Readiness();
  readiness.markStarted();
  return readiness;
}

/**
 * Answers a request Node's HTTP parser refused before any route ran (request line or headers
 * beyond the header limit, bytes that are not HTTP) with the gateway's error shape — an HTTP
 * status and a google.rpc.Status JSON body — instead of Node's bare status line, then closes.
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === "ECONNRESET" || !socket.writable) {
    socket.destroy();
    return;
  }
  const overflow = error.code === "HPE_HEADER_OVERFLOW";
  const [httpStatus, reason, code, message] = overflow
    ? [
        431,
        "Request Header Fields Too Large",
        grpcStatus.RESOURCE_EXHAUSTED,
        "request line or headers exceed the header size limit",
      ]
    : [
        400,
        "Bad Request",
        grpcStatus.INVALID_ARGUMENT,
        `malformed HTTP request (${error.code ?? "parse error"})`,
      ];
  const { contentType, body } = encodeStatus({ code, message, details: [] }, "json");
  socket.end(
    `HTTP/1.1 ${httpStatus} ${reason}\r\nContent-Type: ${contentType}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
