import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import {
  type DescMessage,
  fromBinary,
  fromJsonString,
  type Registry,
  toBinary,
  toJson,
} from "@bufbuild/protobuf";
import { Metadata, status } from "@grpc/grpc-js";
import type { RpcInfo } from "@phoenix/proto";
import { GrpcCallError, REQUEST_ID_KEY } from "@phoenix/runtime/grpc";
import type { Logger } from "@phoenix/runtime/log";
import type { TokenBucketLimiter } from "@phoenix/runtime/rate-limit";
import { type RawData, WebSocket, WebSocketServer } from "ws";
import { contractRegistry, messageDesc, SERVICE_PREFIX, upstreamOf } from "../contracts.js";
import { type ClientOrigin, FORWARDED_FOR_KEY } from "../http/client-origin.js";
import { retryAfterSeconds } from "../http/gateway-errors.js";
import type { GatewayMetrics } from "../http/http-metrics.js";
import type { Upstreams } from "../upstream/upstreams.js";

/** One WebSocket route: a bidi-streaming RPC of a client-facing service. */
export interface StreamRoute {
  readonly rpc: RpcInfo;
  /** `/v1/qs/ws/listen`, `/v1/as/ws/listen-connection-offers`, … */
  readonly path: string;
  readonly requestDesc: DescMessage;
  readonly responseDesc: DescMessage;
}

/** Close code for a stream that ended with gRPC status `code` (4000 + code; OK closes with 1000). */
export function closeCodeOf(code: number): number {
  return code === status.OK ? 1000 : 4000 + code;
}

function kebab(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();
}

/** The WebSocket URL path of a streaming RPC: `/v1/<as|ds|qs>/ws/<method-in-kebab-case>`. */
export function streamPathOf(rpc: RpcInfo): string | undefined {
  const upstream = upstreamOf(rpc.service);
  if (!upstream || !rpc.clientStreaming || !rpc.serverStreaming) return undefined;
  return `/v1/${SERVICE_PREFIX[upstream]}/ws/${kebab(rpc.method)}`;
}

/** The WebSocket routes of every bidi-streaming client-facing RPC. */
export function buildStreamRoutes(rpcs: readonly RpcInfo[], registry?: Registry): StreamRoute[] {
  const routes: StreamRoute[] = [];
  for (const rpc of rpcs) {
    const path = streamPathOf(rpc);
    if (!path) continue;
    routes.push({
      rpc,
      path,
      requestDesc: messageDesc(rpc.requestType, registry),
      responseDesc: messageDesc(rpc.responseType, registry),
    });
  }
  return routes;
}

export interface StreamBridgeOptions {
  routes: readonly StreamRoute[];
  upstreams: Upstreams;
  rateLimiter: TokenBucketLimiter;
  metrics: GatewayMetrics;
  logger: Logger;
  /** Largest client frame (the connection is closed with 1009 above it). */
  maxFrameBytes: number;
  /** Ping interval; a peer that has not answered the previous ping by the next one is dropped. */
  heartbeatMs: number;
  /** Who opened the stream (rate-limit key, `x-forwarded-for` of the upstream call). */
  clientOrigin(req: IncomingMessage): ClientOrigin;
  /** Whether the page that opens the socket may (its `Origin`; default: every upgrade may). */
  allowsUpgrade?(req: IncomingMessage): boolean;
}

type FrameEncoding = "json" | "proto";

/**
 * Bridges WebSocket connections to bidi gRPC streams. Client frames (JSON text or binary
 * protobuf of the RPC's request message: `init` first, then `ack`s) go upstream as they come;
 * upstream responses come back as frames in the encoding chosen with `?encoding=json|proto`.
 * The upstream's end closes the socket with 1000 (OK) or 4000 + the gRPC status code and the
 * status message as reason; the client closing cancels the upstream call.
 */
export class StreamBridge {
  private readonly wss: WebSocketServer;
  private readonly byPath: Map<string, StreamRoute>;
  private readonly cancels = new Set<() => void>();

  constructor(private readonly options: StreamBridgeOptions) {
    this.byPath = new Map(options.routes.map((r) => [r.path, r]));
    this.wss = new WebSocketServer({ noServer: true, maxPayload: options.maxFrameBytes });
  }

  /** Whether `path` is a WebSocket route (plain HTTP requests to it get 426 from the caller). */
  has(path: string): boolean {
    return this.byPath.has(path);
  }

  /** Handles an HTTP upgrade (`server.on("upgrade", …)`). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? "/", "http://gateway.invalid");
    const route = this.byPath.get(url.pathname);
    if (!route) {
      rejectUpgrade(socket, 404, "Not Found", {
        code: status.NOT_FOUND,
        message: `no stream at ${url.pathname}`,
      });
      return;
    }
    if (this.options.allowsUpgrade && !this.options.allowsUpgrade(req)) {
      rejectUpgrade(socket, 403, "Forbidden", {
        code: status.PERMISSION_DENIED,
        message: "this origin may not open the gateway's streams (EDGE_CORS_ALLOWED_ORIGINS)",
      });
      return;
    }
    const origin = this.options.clientOrigin(req);
    const waitMs = this.options.rateLimiter.take(origin.address);
    if (waitMs > 0) {
      this.options.metrics.rateLimited.inc();
      rejectUpgrade(
        socket,
        429,
        "Too Many Requests",
        { code: status.RESOURCE_EXHAUSTED, message: "too many requests from this address" },
        { "Retry-After": String(retryAfterSeconds(waitMs)) },
      );
      return;
    }
    const requested = url.searchParams.get("encoding") ?? "json";
    if (requested !== "json" && requested !== "proto") {
      rejectUpgrade(socket, 400, "Bad Request", {
        code: status.INVALID_ARGUMENT,
        message: "encoding must be json or proto",
      });
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.bridge(ws, route, requested, req, origin));
  }

  private bridge(
    ws: WebSocket,
    route: StreamRoute,
    encoding: FrameEncoding,
    req: IncomingMessage,
    origin: ClientOrigin,
  ): void {
    const { upstreams, metrics, logger, heartbeatMs } = this.options;
    const registry = contractRegistry();
    const requestIdHeader = req.headers[REQUEST_ID_KEY];
    const requestId =
      typeof requestIdHeader === "string" && /^[A-Za-z0-9._:-]{1,128}$/.test(requestIdHeader)
        ? requestIdHeader
        : randomUUID();
    const metadata = new Metadata();
    metadata.set(REQUEST_ID_KEY, requestId);
    if (origin.forwardedFor) metadata.set(FORWARDED_FOR_KEY, origin.forwardedFor);
    const abort = new AbortController();
    const call = upstreams.bidi(route.rpc, { signal: abort.signal, metadata });
    const label = route.path;
    metrics.wsConnections.inc({ route: label });
    let finished = false;

    const finish = (code: number, reason: string) => {
      if (finished) return;
      finished = true;
      clearInterval(heartbeat);
      this.cancels.delete(cancel);
      metrics.wsConnections.dec({ route: label });
      abort.abort();
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
        ws.close(code, truncateReason(reason));
      }
    };
    const cancel = () => finish(1001, "gateway shutting down");
    this.cancels.add(cancel);

    // Heartbeat: a peer that did not answer the last ping is gone (NAT timeout, dead network).
    let alive = true;
    ws.on("pong", () => {
      alive = true;
    });
    const heartbeat = setInterval(() => {
      if (!alive) {
        logger.debug({ route: label, requestId }, "websocket peer missed a heartbeat; closing");
        finish(4000 + status.DEADLINE_EXCEEDED, "heartbeat timeout");
        ws.terminate();
        return;
      }
      alive = false;
      ws.ping();
    }, heartbeatMs);

    ws.on("message", (data: RawData, isBinary: boolean) => {
      metrics.wsFrames.inc({ route: label, direction: "in" });
      let bytes: Uint8Array;
      try {
        bytes = decodeFrame(route.requestDesc, rawBytes(data), isBinary, registry);
      } catch (error) {
        finish(4000 + status.INVALID_ARGUMENT, error instanceof Error ? error.message : "malformed frame");
        return;
      }
      call.send(bytes).catch(() => {
        // The call ended; the response loop reports why.
      });
    });
    ws.on("close", () => {
      finish(1000, "");
    });
    ws.on("error", (error) => {
      logger.debug({ err: error, route: label, requestId }, "websocket error");
      finish(1011, "websocket error");
    });

    void (async () => {
      try {
        for await (const response of call.responses) {
          if (finished) break;
          const frame = encodeFrame(route.responseDesc, response, encoding, registry);
          await new Promise<void>((resolve, reject) => {
            ws.send(frame, { binary: encoding === "proto" }, (error) => (error ? reject(error) : resolve()));
          });
          metrics.wsFrames.inc({ route: label, direction: "out" });
        }
        finish(1000, "stream ended");
      } catch (error) {
        if (finished) return;
        if (error instanceof GrpcCallError) {
          finish(closeCodeOf(error.code), error.statusMessage);
        } else {
          logger.warn({ err: error, route: label, requestId }, "websocket stream failed");
          finish(4000 + status.INTERNAL, "internal error");
        }
      }
    })();
  }

  /** Closes every open stream with 1001 and stops accepting upgrades. */
  async close(): Promise<void> {
    for (const cancel of [...this.cancels]) cancel();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

function rawBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data));
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function decodeFrame(
  desc: DescMessage,
  bytes: Uint8Array,
  isBinary: boolean,
  registry: Registry,
): Uint8Array {
  if (isBinary) {
    try {
      fromBinary(desc, bytes);
    } catch (error) {
      throw new Error(`frame is not a valid binary ${desc.typeName}: ${(error as Error).message}`);
    }
    return bytes;
  }
  const text = Buffer.from(bytes).toString("utf8");
  try {
    JSON.parse(text);
  } catch (error) {
    throw new Error(`frame is not valid JSON: ${(error as Error).message}`);
  }
  return toBinary(desc, fromJsonString(desc, text, { registry }));
}

function encodeFrame(
  desc: DescMessage,
  bytes: Uint8Array,
  encoding: FrameEncoding,
  registry: Registry,
): Buffer | string {
  if (encoding === "proto") return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return JSON.stringify(toJson(desc, fromBinary(desc, bytes), { registry }));
}

/** Close reasons are limited to 123 bytes of UTF-8. */
function truncateReason(reason: string): string {
  let out = reason;
  while (Buffer.byteLength(out, "utf8") > 123) out = out.slice(0, -1);
  return out;
}

function rejectUpgrade(
  socket: Duplex,
  code: number,
  text: string,
  body: { code: number; message: string },
  headers: Record<string, string> = {},
): void {
  const json = JSON.stringify({ ...body, details: [] });
  const lines = [
    `HTTP/1.1 ${code} ${text}`,
    "Content-Type: application/json; charset=utf-8",
    `Content-Length: ${Buffer.byteLength(json)}`,
    "Connection: close",
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    "",
    json,
  ];
  socket.end(lines.join("\r\n"));
}
