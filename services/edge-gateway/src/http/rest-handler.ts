import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Metadata } from "@grpc/grpc-js";
import type { RichStatus } from "@phoenix/runtime/errors";
import { GrpcCallError, REQUEST_ID_KEY } from "@phoenix/runtime/grpc";
import { answerProbe, type Readiness } from "@phoenix/runtime/health";
import type { Logger } from "@phoenix/runtime/log";
import type { TokenBucketLimiter } from "@phoenix/runtime/rate-limit";
import type { Upstreams } from "../upstream/upstreams.js";
import { type ClientOrigin, FORWARDED_FOR_KEY } from "./client-origin.js";
import {
  type BodyEncoding,
  buildRequest,
  encodeResponse,
  encodeStatus,
  JSON_TYPE,
  MalformedRequestError,
  requestEncoding,
  responseEncoding,
  UnsupportedMediaTypeError,
} from "./codec.js";
import {
  bodyTooLarge,
  GatewayError,
  internalError,
  malformed,
  methodNotAllowed,
  notFound,
  rateLimited,
  retryAfterSeconds,
  unsupportedMediaType,
} from "./gateway-errors.js";
import type { GatewayMetrics } from "./http-metrics.js";
import { matchRoute, type RestRoute } from "./routes.js";
import { httpStatusOf } from "./status-mapping.js";

/** Request limits of the REST front door. */
export interface RestLimits {
  /** Largest request body (413 above it). */
  maxBodyBytes: number;
  /** Deadline of the upstream call when the client sends no `grpc-timeout` header. */
  defaultDeadlineMs: number;
  /** Upper bound for a client-requested deadline. */
  maxDeadlineMs: number;
}

/** Fixed endpoints beside the RPC routes. */
export interface RestEndpoints {
  /** `/healthz` and `/readyz`, answered by the runtime's probe endpoints (as on the metrics port). */
  readiness: Readiness;
  /** `/openapi.json`. */
  openApi(): string;
}

export interface RestHandlerOptions {
  routes: readonly RestRoute[];
  upstreams: Upstreams;
  limits: RestLimits;
  rateLimiter: TokenBucketLimiter;
  metrics: GatewayMetrics;
  logger: Logger;
  endpoints: RestEndpoints;
  /** Who sent the request (rate-limit key, `x-forwarded-for` of the upstream call). */
  clientOrigin(req: IncomingMessage): ClientOrigin;
}

const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
const TIMEOUT_PATTERN = /^(\d{1,8})([HMSmun])$/;
const TIMEOUT_UNIT_MS: Record<string, number> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 0.001,
  n: 0.000001,
};

/** The client's deadline from a `grpc-timeout` header (`100m`, `5S`, …); undefined when absent. */
export function parseTimeoutHeader(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const match = TIMEOUT_PATTERN.exec(value.trim());
  if (!match) throw malformed(`grpc-timeout header ${JSON.stringify(value)} is not <digits><H|M|S|m|u|n>`);
  return Number(match[1]) * (TIMEOUT_UNIT_MS[match[2] as string] ?? 1);
}

/**
 * The REST front door as a node:http request listener: fixed endpoints, then route → rate limit
 * → body (size-limited) → request message → upstream call with deadline → response in the
 * encoding the client accepts. Every failure becomes a google.rpc.Status body with the matching
 * HTTP status.
 */
export function createRestHandler(options: RestHandlerOptions) {
  const { routes, upstreams, limits, rateLimiter, metrics, logger, endpoints } = options;

  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const method = (req.method ?? "GET").toUpperCase();
    const requestIdHeader = req.headers[REQUEST_ID_KEY];
    const requestId =
      typeof requestIdHeader === "string" && REQUEST_ID_PATTERN.test(requestIdHeader)
        ? requestIdHeader
        : randomUUID();
    res.setHeader(REQUEST_ID_KEY, requestId);
    let routeLabel = "unmatched";
    let encoding: BodyEncoding = "json";
    try {
      encoding = responseEncoding(req.headers.accept);
      const url = new URL(req.url ?? "/", "http://gateway.invalid");
      const path = url.pathname;

      const fixed = fixedEndpoint(path);
      if (fixed) {
        routeLabel = path;
        if (method !== "GET" && method !== "HEAD") throw methodNotAllowed(method, path, ["GET"]);
        await fixed(res, method === "HEAD");
        return;
      }

      let match: ReturnType<typeof matchRoute>;
      try {
        match = matchRoute(routes, method, path);
      } catch {
        throw malformed(`path ${path} is not valid percent-encoding`);
      }
      if (match.kind === "not-found") throw notFound(method, path);
      if (match.kind === "method-not-allowed") throw methodNotAllowed(method, path, match.allow);
      const { route, variables } = match;
      routeLabel = route.label;

      const origin = options.clientOrigin(req);
      const waitMs = rateLimiter.take(origin.address);
      if (waitMs > 0) {
        metrics.rateLimited.inc();
        throw rateLimited(retryAfterSeconds(waitMs));
      }

      let bodyEncoding: BodyEncoding;
      try {
        bodyEncoding = requestEncoding(req.headers["content-type"]);
      } catch (error) {
        if (error instanceof UnsupportedMediaTypeError) throw unsupportedMediaType(error.message);
        throw error;
      }
      const clientTimeout = parseTimeoutHeader(header(req, "grpc-timeout"));
      const body = await readBody(req, limits.maxBodyBytes);
      let request: Uint8Array;
      try {
        request = buildRequest(route, { encoding: bodyEncoding, body, variables, query: url.searchParams });
      } catch (error) {
        if (error instanceof MalformedRequestError) throw malformed(error.message);
        throw error;
      }

      const deadlineMs = Math.min(clientTimeout ?? limits.defaultDeadlineMs, limits.maxDeadlineMs);
      const abort = new AbortController();
      // The client went away: cancel the upstream call instead of finishing work nobody reads.
      const onClose = () => {
        if (!res.writableEnded) abort.abort();
      };
      res.once("close", onClose);
      const metadata = new Metadata();
      metadata.set(REQUEST_ID_KEY, requestId);
      if (origin.forwardedFor) metadata.set(FORWARDED_FOR_KEY, origin.forwardedFor);
      let reply: Uint8Array;
      try {
        reply = await upstreams.unary(route.rpc, request, { deadlineMs, signal: abort.signal, metadata });
      } finally {
        res.off("close", onClose);
      }
      const encoded = encodeResponse(route, reply, encoding);
      send(res, 200, encoded.contentType, encoded.body, method === "HEAD");
    } catch (error) {
      const { httpStatus, status, headers } = toHttpError(error, logger, requestId, routeLabel);
      for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
      const encoded = encodeStatus(status, encoding);
      send(res, httpStatus, encoded.contentType, encoded.body, method === "HEAD");
      // A refused body beyond the drain limit may still be arriving: the connection goes with it.
      if (httpStatus === 413 && !req.complete) res.once("finish", () => req.destroy());
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.requests.inc({ route: routeLabel, method, code: String(res.statusCode) });
      metrics.duration.observe({ route: routeLabel }, seconds);
    }
  };

  function fixedEndpoint(path: string): ((res: ServerResponse, head: boolean) => Promise<void>) | undefined {
    if (path === "/healthz" || path === "/readyz") {
      return async (res, head) => {
        await answerProbe(path, head ? "HEAD" : "GET", endpoints.readiness, res);
      };
    }
    if (path === "/openapi.json") {
      return async (res, head) => send(res, 200, JSON_TYPE, endpoints.openApi(), head);
    }
    return undefined;
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function send(
  res: ServerResponse,
  code: number,
  contentType: string,
  body: Uint8Array | string,
  head: boolean,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const bytes =
    typeof body === "string"
      ? Buffer.from(body, "utf8")
      : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  res.statusCode = code;
  res.setHeader("content-type", contentType === JSON_TYPE ? `${JSON_TYPE}; charset=utf-8` : contentType);
  res.setHeader("content-length", bytes.byteLength);
  res.setHeader("cache-control", "no-store");
  res.end(head ? undefined : bytes);
}

/**
 * A refused body up to this size is read to its end (and discarded) before the 413 goes out, so
 * the client sees the answer: a server that answers and closes while the client is still sending
 * leaves it with a broken pipe instead (undici: "fetch failed", EPIPE). A larger one is answered
 * at once and its connection closed.
 */
const DRAIN_LIMIT_FACTOR = 4;

/** Reads the body up to `limit` bytes; a larger one (declared or actual) is 413. */
async function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array> {
  const drainLimit = limit * DRAIN_LIMIT_FACTOR;
  const declared = Number(req.headers["content-length"] ?? "0");
  if (Number.isFinite(declared) && declared > limit) {
    if (declared <= drainLimit) await drain(req, drainLimit);
    throw bodyTooLarge(limit, declared);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.byteLength;
    // Past the limit the rest is only counted (drained), up to the drain limit.
    if (size > drainLimit) break;
    if (size <= limit) chunks.push(buffer);
  }
  if (size > limit) throw bodyTooLarge(limit, 0);
  const all = Buffer.concat(chunks);
  return new Uint8Array(all.buffer, all.byteOffset, all.byteLength);
}

/** Reads and discards the rest of a refused body, at most `budget` bytes. */
async function drain(req: IncomingMessage, budget: number): Promise<void> {
  let left = budget;
  for await (const chunk of req) {
    left -= (chunk as Buffer).byteLength;
    if (left < 0) return;
  }
}

function toHttpError(
  error: unknown,
  logger: Logger,
  requestId: string,
  route: string,
): { httpStatus: number; status: RichStatus; headers: Readonly<Record<string, string>> } {
  if (error instanceof GatewayError) {
    return { httpStatus: error.httpStatus, status: error.status, headers: error.headers };
  }
  if (error instanceof GrpcCallError) {
    const status: RichStatus = {
      code: error.code,
      message: error.statusMessage,
      details: [...error.details],
    };
    if (httpStatusOf(error.code) >= 500) {
      logger.warn(
        { requestId, route, code: error.code, message: error.statusMessage },
        "upstream call failed",
      );
    }
    return { httpStatus: httpStatusOf(error.code), status, headers: {} };
  }
  logger.error({ err: error, requestId, route }, "request handling failed");
  const internal = internalError();
  return { httpStatus: internal.httpStatus, status: internal.status, headers: {} };
}
