import { createRequire } from "node:module";
import { Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { auth, delivery, queue, type RpcInfo, rpcCatalog } from "@phoenix/proto";
import {
  type BidiCall,
  decodeRichStatus,
  GrpcCallError,
  type ServiceClient,
  type ServiceDefinitionLike,
  STATUS_DETAILS_KEY,
} from "@phoenix/wire";
import type WebSocket from "ws";
import type { Transport } from "./transport.js";

// `ws` is loaded on the first stream only: unary calls (all a short-lived program such as the
// `phoenix` CLI makes) do not pay for it. It is CommonJS, so a synchronous require does.
const require = createRequire(import.meta.url);
let wsClass: typeof WebSocket | undefined;
function webSocketClass(): typeof WebSocket {
  wsClass ??= require("ws") as typeof WebSocket;
  return wsClass;
}

const PROTOBUF = "application/x-protobuf";

/** Options of the REST transport. */
export interface RestTransportOptions {
  /** Deadline of a unary call (default 20 s). */
  deadlineMs?: number;
  /**
   * A stream whose socket saw no frame and no ping for this long is treated as dead and closed
   * (UNAVAILABLE; the listener re-opens it). Default 75 s: the gateway pings every 30 s.
   */
  silenceTimeoutMs?: number;
}

interface ErasedMethod {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestSerialize(value: unknown): Buffer;
  responseDeserialize(bytes: Buffer): unknown;
}

interface JsonMessage {
  toJSON(value: unknown): unknown;
}

const modules: Record<string, Record<string, unknown>> = {
  "phoenix.auth.v1": auth,
  "phoenix.delivery.v1": delivery,
  "phoenix.queue.v1": queue,
};

function messageType(fullName: string): JsonMessage {
  const dot = fullName.lastIndexOf(".");
  const found = modules[fullName.slice(0, dot)]?.[fullName.slice(dot + 1)] as JsonMessage | undefined;
  if (!found || typeof found.toJSON !== "function") throw new Error(`no message type ${fullName}`);
  return found;
}

function kebab(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();
}

function callError(path: string, code: number, message: string, details?: Uint8Array): GrpcCallError {
  const metadata = new Metadata();
  if (details && details.length > 0) metadata.set(STATUS_DETAILS_KEY, Buffer.from(details));
  const error = Object.assign(new Error(message), { code, details: message, metadata }) as ServiceError;
  return new GrpcCallError(path, error);
}

function httpToCode(httpStatus: number): number {
  const table: Record<number, number> = {
    400: status.INVALID_ARGUMENT,
    401: status.UNAUTHENTICATED,
    403: status.PERMISSION_DENIED,
    404: status.NOT_FOUND,
    409: status.ABORTED,
    429: status.RESOURCE_EXHAUSTED,
    501: status.UNIMPLEMENTED,
    503: status.UNAVAILABLE,
    504: status.DEADLINE_EXCEEDED,
  };
  return table[httpStatus] ?? status.UNKNOWN;
}

function queryOf(json: unknown): URLSearchParams {
  const params = new URLSearchParams();
  if (json && typeof json === "object") {
    for (const [key, value] of Object.entries(json)) {
      const values = Array.isArray(value) ? value : [value];
      for (const v of values) if (v !== undefined && v !== null) params.append(key, String(v));
    }
  }
  return params;
}

/** What every call of one REST transport shares. */
interface RestContext {
  base: string;
  deadlineMs: number;
  silenceTimeoutMs: number;
  catalog: Map<string, RpcInfo>;
  /** Open sockets and in-flight requests, ended by the transport's `close()`. */
  sockets: Set<WebSocket>;
  controllers: Set<AbortController>;
}

/**
 * A transport over the edge gateway: unary RPCs as REST calls with binary protobuf bodies,
 * the listening streams over its WebSocket routes. Errors are the same `GrpcCallError`s the gRPC
 * transport raises, so `PhoenixClient` handles both alike.
 */
export function createRestTransport(baseUrl: string, options: RestTransportOptions = {}): Transport {
  const ctx: RestContext = {
    base: baseUrl.replace(/\/+$/, ""),
    deadlineMs: options.deadlineMs ?? 20_000,
    silenceTimeoutMs: options.silenceTimeoutMs ?? 75_000,
    catalog: new Map<string, RpcInfo>(rpcCatalog().map((r) => [r.path, r])),
    sockets: new Set<WebSocket>(),
    controllers: new Set<AbortController>(),
  };
  return {
    auth: restClient(ctx, auth.AuthServiceService),
    delivery: restClient(ctx, delivery.DeliveryServiceService),
    queue: restClient(ctx, queue.QueueServiceService),
    close() {
      for (const c of ctx.controllers) c.abort();
      for (const s of ctx.sockets) s.terminate();
    },
  };
}

/** A service client whose unary methods are REST calls and whose bidi streams are WebSockets. */
function restClient<D extends ServiceDefinitionLike>(ctx: RestContext, definition: D): ServiceClient<D> {
  const methods: Record<string, unknown> = {};
  for (const [key, def] of Object.entries(definition)) {
    const method = def as unknown as ErasedMethod;
    if (method.requestStream && method.responseStream) methods[key] = () => bidi(ctx, method);
    else if (!method.requestStream && !method.responseStream)
      methods[key] = (request: unknown) => unary(ctx, method, request);
    else
      methods[key] = () => {
        throw callError(method.path, status.UNIMPLEMENTED, "not available over REST");
      };
  }
  return methods as ServiceClient<D>;
}

/** The HTTP verb, path (with query) and body of a unary call, by the RPC's HTTP annotation. */
function restRequest(
  ctx: RestContext,
  method: ErasedMethod,
  request: unknown,
): { verb: string; route: string; body: Uint8Array | undefined } {
  const info = ctx.catalog.get(method.path);
  const pattern = info?.http?.pattern;
  if (!info || !pattern) throw callError(method.path, status.UNIMPLEMENTED, "no REST route for this RPC");
  const verb = pattern.$case === "custom" ? pattern.value.kind : pattern.$case;
  let route = pattern.$case === "custom" ? pattern.value.path : pattern.value;
  if (verb !== "get" && verb !== "delete")
    return { verb, route, body: new Uint8Array(method.requestSerialize(request)) };
  const json = messageType(info.requestType).toJSON(request) as Record<string, unknown>;
  route = route.replace(/\{([^}=]+)[^}]*\}/g, (_m, name: string) => {
    const v = json[name];
    delete json[name];
    return encodeURIComponent(String(v ?? ""));
  });
  const query = queryOf(json).toString();
  if (query) route += `?${query}`;
  return { verb, route, body: undefined };
}

async function unary(ctx: RestContext, method: ErasedMethod, request: unknown): Promise<unknown> {
  const { verb, route, body } = restRequest(ctx, method, request);
  const controller = new AbortController();
  ctx.controllers.add(controller);
  const timer = setTimeout(() => controller.abort(), ctx.deadlineMs);
  try {
    const send = () =>
      fetch(`${ctx.base}${route}`, {
        method: verb.toUpperCase(),
        headers: { accept: PROTOBUF, ...(body ? { "content-type": PROTOBUF } : {}) },
        body,
        signal: controller.signal,
      });
    let response: Response;
    try {
      try {
        response = await send();
      } catch (error) {
        // fetch may reuse a pooled keep-alive connection the gateway has just closed as idle
        // (undici #3492): the request never reached the gateway, so sending it once more on a
        // fresh connection is safe (signed requests carry their request id: never applied twice).
        if (controller.signal.aborted || !staleConnection(error)) throw error;
        response = await send();
      }
    } catch (error) {
      const code = controller.signal.aborted ? status.DEADLINE_EXCEEDED : status.UNAVAILABLE;
      throw callError(method.path, code, `edge gateway ${ctx.base}: ${describeFetchError(error)}`);
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (response.ok) return method.responseDeserialize(Buffer.from(bytes));
    throw responseError(method, response, bytes);
  } finally {
    clearTimeout(timer);
    ctx.controllers.delete(controller);
  }
}

/** The error of a failed response: its rich status when protobuf, else the HTTP status and text. */
function responseError(method: ErasedMethod, response: Response, bytes: Uint8Array): GrpcCallError {
  const type = response.headers.get("content-type") ?? "";
  if (type.includes("protobuf")) {
    let decoded: { code: number; message: string };
    try {
      decoded = decodeRichStatus(bytes);
    } catch {
      decoded = { code: httpToCode(response.status), message: `HTTP ${response.status}` };
    }
    return callError(method.path, decoded.code, decoded.message, bytes);
  }
  const text = new TextDecoder().decode(bytes);
  return callError(method.path, httpToCode(response.status), text || `HTTP ${response.status}`);
}

/** A bidi stream over the gateway's WebSocket route of the RPC (one frame = one message). */
function bidi(ctx: RestContext, method: ErasedMethod): BidiCall<unknown, unknown> {
  const name = method.path.split("/").pop() ?? "";
  const area = method.path.includes(".auth.") ? "as" : method.path.includes(".queue.") ? "qs" : "ds";
  const url = `${ctx.base.replace(/^http/, "ws")}/v1/${area}/ws/${kebab(name)}?encoding=proto`;
  const socket = new (webSocketClass())(url);
  ctx.sockets.add(socket);
  const opened = new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", (e) => reject(callError(method.path, status.UNAVAILABLE, e.message)));
  });
  opened.catch(() => undefined);
  const inbox = socketInbox(ctx, method, socket);
  return {
    async send(request) {
      await opened;
      const bytes = method.requestSerialize(request);
      await new Promise<void>((resolve, reject) =>
        socket.send(bytes, (e) =>
          e ? reject(callError(method.path, status.UNAVAILABLE, e.message)) : resolve(),
        ),
      );
    },
    end() {
      socket.close(1000);
    },
    cancel() {
      inbox.fail(callError(method.path, status.CANCELLED, "cancelled"));
      socket.terminate();
    },
    responses: inbox.responses(),
  };
}

/**
 * The messages arriving on `socket`, in order, then its end: a clean close (1000) ends the
 * stream, a close code 4000+n is gRPC status n, anything else UNAVAILABLE. A socket silent for
 * `silenceTimeoutMs` (no frame, no ping) is terminated.
 */
function socketInbox(
  ctx: RestContext,
  method: ErasedMethod,
  socket: WebSocket,
): { responses(): AsyncGenerator<unknown>; fail(error: GrpcCallError): void } {
  const queued: unknown[] = [];
  let ended: GrpcCallError | null | undefined;
  let wake: (() => void) | undefined;
  let silence: NodeJS.Timeout | undefined;
  const alive = () => {
    clearTimeout(silence);
    silence = setTimeout(() => socket.terminate(), ctx.silenceTimeoutMs);
  };
  alive();
  socket.on("ping", alive);
  socket.on("message", (data: Buffer) => {
    alive();
    try {
      queued.push(method.responseDeserialize(data));
    } catch {
      ended = callError(method.path, status.INTERNAL, "undecodable frame from the gateway");
      socket.terminate();
    }
    wake?.();
  });
  socket.on("error", () => undefined);
  socket.on("close", (code: number, reason: Buffer) => {
    clearTimeout(silence);
    ctx.sockets.delete(socket);
    // A stream that already failed (cancelled, bad frame) keeps that error.
    if (ended === undefined) {
      const grpcCode = code >= 4000 && code < 4100 ? code - 4000 : status.UNAVAILABLE;
      ended =
        code === 1000
          ? null
          : callError(method.path, grpcCode, reason.toString() || `WebSocket closed (${code})`);
    }
    wake?.();
  });
  async function* responses(): AsyncGenerator<unknown> {
    for (;;) {
      if (queued.length > 0) {
        yield queued.shift();
        continue;
      }
      if (ended === null) return;
      if (ended) throw ended;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
    }
  }
  return {
    responses,
    fail(error) {
      if (!ended) ended = error;
      wake?.();
    },
  };
}

/** fetch's own message ("fetch failed") with its cause (e.g. "other side closed", ECONNRESET). */
function describeFetchError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause;
  if (!(cause instanceof Error)) return error.message;
  const code = (cause as { code?: unknown }).code;
  return `${error.message} (${typeof code === "string" ? `${code}: ` : ""}${cause.message})`;
}

/** A fetch that failed because the connection was closed under it (before any response). */
function staleConnection(error: unknown): boolean {
  const code = error instanceof Error ? (error.cause as { code?: unknown } | undefined)?.code : undefined;
  return code === "UND_ERR_SOCKET" || code === "ECONNRESET" || code === "EPIPE";
}
