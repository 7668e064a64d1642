import { once } from "node:events";
import type { Readable } from "node:stream";
import type { PeerCertificate } from "node:tls";
import type {
  Metadata,
  ServerDuplexStream,
  ServerReadableStream,
  ServerUnaryCall,
  ServerWritableStream,
  sendUnaryData,
  UntypedServiceImplementation,
} from "@grpc/grpc-js";
import {
  type MethodDefinitionLike,
  REQUEST_ID_KEY,
  type ServiceDefinitionLike,
  splitPath,
} from "@phoenix/wire";
import {
  CancelledError,
  DeadlineExceededError,
  InvalidArgumentError,
  type RpcError,
} from "../errors/rpc-errors.js";
import { type RpcStatus, toGrpcStatus } from "../errors/to-grpc-status.js";
import { dependencyUnavailable } from "../health/unavailable.js";
import type { Logger } from "../log/create-logger.js";
import type { CallTracker } from "./call-tracker.js";
import { abandonReason, deadlineMillis } from "./deadline.js";
import type { AnyRpc, CallContext, ResponseStream, ServiceRegistration } from "./handlers.js";
import { requestIdOf } from "./request-id.js";

/** What bound handlers need from the server. */
export interface BindRuntime {
  readonly logger: Logger;
  /** Server default deadline (ms) for calls without one; null for none. */
  readonly defaultDeadlineMs: number | null;
  readonly tracker: CallTracker;
  /** Turns library/domain errors into RpcErrors before the mapping (see CreateGrpcServerOptions). */
  readonly translateError?: ((error: unknown) => RpcError | undefined) | undefined;
}

/** A request whose bytes did not decode; answered with INVALID_ARGUMENT instead of grpc-js' INTERNAL. */
class MalformedRequest {
  constructor(readonly reason: string) {}
}

function malformedError(path: string, malformed: MalformedRequest): InvalidArgumentError {
  return new InvalidArgumentError(`request message of ${path} does not decode: ${malformed.reason}`);
}

/** setTimeout's limit; longer deadlines are effectively none. */
const MAX_TIMER_MS = 2_147_483_647;

/** The parts of a grpc-js server call (any of the four kinds) a context is built from. */
interface SurfaceCall {
  readonly metadata: Metadata;
  getPeer(): string;
  getAuthContext?(): { sslPeerCertificate?: PeerCertificate } | null;
  getDeadline(): Date | number;
  on(event: "cancelled", listener: () => void): unknown;
  off(event: "cancelled", listener: () => void): unknown;
}

/** The client's TLS certificate; node reports "none" as an empty object. */
function peerCertificateOf(call: SurfaceCall): PeerCertificate | undefined {
  const cert = call.getAuthContext?.()?.sslPeerCertificate;
  return cert === undefined || cert.raw === undefined ? undefined : cert;
}

/** One running call: its context and the bookkeeping to end it exactly once. */
interface OpenCall {
  readonly ctx: CallContext;
  /** Stops the deadline timer and cancel listener (the call has its final status). */
  close(): void;
  /** Marks the handler settled (it may outlive the response). */
  settle(): void;
}

function openCall(call: SurfaceCall, rpc: AnyRpc, runtime: BindRuntime, path: string): OpenCall {
  const { service, method } = splitPath(path);
  const streaming = rpc.kind === "serverStreaming" || rpc.kind === "bidiStreaming";
  const controller = new AbortController();
  const metadata: Metadata = call.metadata;
  const requestId = requestIdOf(metadata);
  const peer = call.getPeer();
  const clientDeadline = deadlineMillis(call.getDeadline());
  const defaultMs =
    rpc.options.defaultDeadlineMs !== undefined
      ? rpc.options.defaultDeadlineMs
      : streaming
        ? null
        : runtime.defaultDeadlineMs;
  const deadlineMs = Number.isFinite(clientDeadline)
    ? clientDeadline
    : defaultMs === null
      ? undefined
      : Date.now() + defaultMs;

  let timer: NodeJS.Timeout | undefined;
  if (deadlineMs !== undefined && deadlineMs - Date.now() < MAX_TIMER_MS) {
    timer = setTimeout(
      () => controller.abort(new DeadlineExceededError("deadline exceeded")),
      Math.max(0, deadlineMs - Date.now()),
    );
    timer.unref();
  }
  const receivedAt = Date.now();
  const onCancelled = () => controller.abort(abandonReason(clientDeadline, receivedAt));
  call.on("cancelled", onCancelled);
  const untrack = runtime.tracker.add(controller, rpc.options.onShutdown ?? (streaming ? "abort" : "drain"));

  const ctx: CallContext = {
    service,
    method,
    metadata,
    peer,
    peerCertificate: peerCertificateOf(call),
    requestId,
    log: runtime.logger.child({ rpc: path, [REQUEST_ID_KEY]: requestId }),
    signal: controller.signal,
    deadline: deadlineMs === undefined ? undefined : new Date(deadlineMs),
  };
  let closed = false;
  return {
    ctx,
    close() {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      // grpc-js emits "cancelled" after every finished call too; it must not abort the signal then.
      call.off("cancelled", onCancelled);
    },
    settle: untrack,
  };
}

/**
 * The status for a failed call. When the call was aborted (deadline, cancel, shutdown) the
 * abort reason wins over whatever the handler threw while unwinding. An unknown error is
 * logged with its stack here: the client only sees a generic INTERNAL.
 */
function failureStatus(error: unknown, ctx: CallContext, runtime: BindRuntime): RpcStatus {
  const cause = ctx.signal.aborted ? ctx.signal.reason : error;
  // A dependency out of reach (database, bus) is an outage the client should retry, not a bug.
  const mapped = toGrpcStatus(runtime.translateError?.(cause) ?? dependencyUnavailable(cause) ?? cause);
  if (!mapped.known) ctx.log.error({ err: cause }, "rpc handler failed");
  return mapped;
}

function bindUnary(rpc: AnyRpc & { kind: "unary" }, runtime: BindRuntime, path: string) {
  return (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
    const open = openCall(call, rpc, runtime, path);
    const { ctx } = open;
    let responded = false;
    const respond = (error: unknown, response?: unknown): boolean => {
      if (responded) return false;
      responded = true;
      open.close();
      if (error === undefined) {
        callback(null, response);
      } else {
        const st = failureStatus(error, ctx, runtime);
        callback({ code: st.code, details: st.details, metadata: st.metadata }, null);
      }
      return true;
    };
    ctx.signal.addEventListener("abort", () => respond(ctx.signal.reason), { once: true });
    const request = call.request;
    if (request instanceof MalformedRequest) {
      respond(malformedError(path, request));
      open.settle();
      return;
    }
    runHandler(() => rpc.handler(request as never, ctx), ctx, open, respond);
  };
}

function bindClientStreaming(rpc: AnyRpc & { kind: "clientStreaming" }, runtime: BindRuntime, path: string) {
  return (call: ServerReadableStream<unknown, unknown>, callback: sendUnaryData<unknown>) => {
    const open = openCall(call, rpc, runtime, path);
    const { ctx } = open;
    let responded = false;
    const respond = (error: unknown, response?: unknown): boolean => {
      if (responded) return false;
      responded = true;
      open.close();
      if (error === undefined) {
        callback(null, response);
      } else {
        const st = failureStatus(error, ctx, runtime);
        callback({ code: st.code, details: st.details, metadata: st.metadata }, null);
      }
      return true;
    };
    ctx.signal.addEventListener("abort", () => respond(ctx.signal.reason), { once: true });
    const requests = readRequests(call, ctx.signal, path);
    runHandler(() => rpc.handler(requests as AsyncIterable<never>, ctx), ctx, open, respond);
  };
}

function bindServerStreaming(rpc: AnyRpc & { kind: "serverStreaming" }, runtime: BindRuntime, path: string) {
  return (call: ServerWritableStream<unknown, unknown>) => {
    const open = openCall(call, rpc, runtime, path);
    const { ctx } = open;
    const end = streamEnder(call, ctx, open, runtime);
    ctx.signal.addEventListener("abort", () => end(ctx.signal.reason), { once: true });
    const request = call.request;
    if (request instanceof MalformedRequest) {
      end(malformedError(path, request));
      open.settle();
      return;
    }
    const stream = responseStream(call, ctx.signal);
    runHandler(
      () => rpc.handler(request as never, ctx, stream),
      ctx,
      open,
      (error) => end(error),
    );
  };
}

function bindBidiStreaming(rpc: AnyRpc & { kind: "bidiStreaming" }, runtime: BindRuntime, path: string) {
  return (call: ServerDuplexStream<unknown, unknown>) => {
    const open = openCall(call, rpc, runtime, path);
    const { ctx } = open;
    const end = streamEnder(call, ctx, open, runtime);
    ctx.signal.addEventListener("abort", () => end(ctx.signal.reason), { once: true });
    const requests = readRequests(call, ctx.signal, path);
    const stream = responseStream(call, ctx.signal);
    runHandler(
      () => rpc.handler(requests as AsyncIterable<never>, ctx, stream),
      ctx,
      open,
      (error) => end(error),
    );
  };
}

/** Runs a handler, answers through `respond`, and keeps the call tracked until the handler settles. */
function runHandler(
  run: () => Promise<unknown>,
  ctx: CallContext,
  open: OpenCall,
  respond: (error: unknown, response?: unknown) => boolean,
): void {
  let promise: Promise<unknown>;
  try {
    promise = run();
  } catch (error) {
    promise = Promise.reject(error);
  }
  promise
    .then(
      (response) => respond(undefined, response),
      (error: unknown) => {
        // When the call was already answered (deadline, cancel, shutdown), a genuine bug in the
        // unwinding handler would otherwise vanish.
        if (
          !respond(error ?? new Error("handler rejected without a reason")) &&
          !isAbortFallout(error, ctx)
        ) {
          ctx.log.error({ err: error }, "rpc handler failed after the call ended");
        }
      },
    )
    .finally(() => {
      open.close();
      open.settle();
    });
}

function isAbortFallout(error: unknown, ctx: CallContext): boolean {
  return (
    error === ctx.signal.reason ||
    toGrpcStatus(error).known ||
    (error instanceof Error && error.name === "AbortError")
  );
}

type StreamCall = ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>;

/** Ends a streaming call once: OK after the handler resolved, else the mapped status. */
function streamEnder(
  call: StreamCall,
  ctx: CallContext,
  open: OpenCall,
  runtime: BindRuntime,
): (error?: unknown) => boolean {
  let ended = false;
  return (error?: unknown) => {
    if (ended) return false;
    ended = true;
    open.close();
    // A cancelled call has no client to tell; grpc-js has already torn the stream down.
    if (call.cancelled || call.destroyed) return true;
    if (error === undefined) {
      call.end();
      return true;
    }
    const st = failureStatus(error, ctx, runtime);
    call.emit("error", { code: st.code, details: st.details, metadata: st.metadata });
    return true;
  };
}

function responseStream(call: StreamCall, signal: AbortSignal): ResponseStream<unknown> {
  return {
    async send(message) {
      if (signal.aborted) throw signal.reason;
      if (call.writableEnded || call.destroyed) throw new CancelledError("the call has ended");
      if (call.write(message)) return;
      try {
        await once(call, "drain", { signal });
      } catch (error) {
        throw signal.aborted ? signal.reason : error;
      }
    },
  };
}

/** The request stream as an async iterable that throws the abort reason when the call ends early. */
async function* readRequests(call: Readable, signal: AbortSignal, path: string): AsyncGenerator<unknown> {
  const iterator = call.iterator({ destroyOnReturn: false });
  let rejectAbort: (reason: unknown) => void = () => {};
  const aborted = new Promise<never>((_, reject) => {
    rejectAbort = reject;
  });
  aborted.catch(() => {});
  const onAbort = () => rejectAbort(signal.reason);
  if (signal.aborted) onAbort();
  else signal.addEventListener("abort", onAbort, { once: true });
  try {
    for (;;) {
      const next = await Promise.race([iterator.next(), aborted]);
      if (next.done) return;
      if (next.value instanceof MalformedRequest) throw malformedError(path, next.value);
      yield next.value;
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/** The grpc-js definition to register: request decoding failures become a value, not INTERNAL. */
export function wrapDefinition(definition: ServiceDefinitionLike): Record<string, MethodDefinitionLike> {
  const wrapped: Record<string, MethodDefinitionLike> = {};
  for (const [key, method] of Object.entries(definition)) {
    wrapped[key] = {
      ...method,
      requestDeserialize(bytes: Buffer): unknown {
        try {
          return method.requestDeserialize(bytes);
        } catch (error) {
          const reason = error instanceof Error ? error.message : String(error);
          return new MalformedRequest(reason.slice(0, 200));
        }
      },
    };
  }
  return wrapped;
}

/** Turns a registration's promise handlers into the grpc-js implementation object. */
export function bindService(
  registration: ServiceRegistration,
  runtime: BindRuntime,
): UntypedServiceImplementation {
  const implementation: UntypedServiceImplementation = {};
  for (const [key, method] of Object.entries(registration.definition)) {
    const rpc = registration.handlers[key];
    if (!rpc) continue;
    switch (rpc.kind) {
      case "unary":
        implementation[key] = bindUnary(rpc, runtime, method.path);
        break;
      case "clientStreaming":
        implementation[key] = bindClientStreaming(rpc, runtime, method.path);
        break;
      case "serverStreaming":
        implementation[key] = bindServerStreaming(rpc, runtime, method.path);
        break;
      case "bidiStreaming":
        implementation[key] = bindBidiStreaming(rpc, runtime, method.path);
        break;
    }
  }
  return implementation;
}
