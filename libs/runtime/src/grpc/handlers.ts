import type { PeerCertificate } from "node:tls";
import type { Metadata } from "@grpc/grpc-js";
import {
  type MethodDefinitionLike,
  type RequestOf,
  type ResponseOf,
  ServiceDefinitionError,
  type ServiceDefinitionLike,
  serviceNameOf,
} from "@phoenix/wire";
import type { Logger } from "../log/create-logger.js";

/** What a handler knows about the call it serves. */
export interface CallContext {
  /** `phoenix.queue.v1.QueueService`. */
  readonly service: string;
  /** `CreateUser`. */
  readonly method: string;
  /** Request metadata (headers) sent by the client. */
  readonly metadata: Metadata;
  /** The client's address, `ipv4:127.0.0.1:53124`. */
  readonly peer: string;
  /**
   * The certificate the client presented on a TLS listener that asks for one (mutual TLS);
   * undefined over plaintext or when it presented none.
   */
  readonly peerCertificate?: PeerCertificate | undefined;
  /** The client's `x-request-id`, or a fresh one; bound to every log line of the call. */
  readonly requestId: string;
  /** Logger bound to this call (`rpc`, `requestId`, `peer`). */
  readonly log: Logger;
  /**
   * Fires when the call ends early: client cancel (reason: CancelledError), deadline
   * (DeadlineExceededError) or shutdown (UnavailableError). Pass it to every awaited I/O.
   */
  readonly signal: AbortSignal;
  /** The effective deadline: the client's, else the server default; undefined when none. */
  readonly deadline: Date | undefined;
}

/** The response side of a streaming call. */
export interface ResponseStream<Res> {
  /**
   * Sends one message. Resolves when the transport accepted it (waits while the client reads
   * slowly: that is the backpressure); rejects with the abort reason once the call ended.
   */
  send(message: Res): Promise<void>;
}

/** Per-RPC behaviour. */
export interface RpcOptions {
  /**
   * Deadline (ms) applied when the client sent none, overriding `GRPC_DEFAULT_DEADLINE_MS`;
   * `null` for none. Default: the server default for unary and client-streaming RPCs, none for
   * server- and bidi-streaming ones (they are long-lived by design).
   */
  defaultDeadlineMs?: number | null;
  /**
   * What a graceful shutdown does with this call: `"drain"` waits for it (up to the grace
   * period), `"abort"` aborts its signal with UNAVAILABLE at once so the client reconnects to
   * another replica. Default: drain for unary and client-streaming, abort for the others —
   * a listening stream would otherwise hold every shutdown for the whole grace period.
   */
  onShutdown?: "drain" | "abort";
}

export type UnaryHandler<Req, Res> = (request: Req, ctx: CallContext) => Promise<Res>;
export type ServerStreamingHandler<Req, Res> = (
  request: Req,
  ctx: CallContext,
  stream: ResponseStream<Res>,
) => Promise<void>;
export type ClientStreamingHandler<Req, Res> = (
  requests: AsyncIterable<Req>,
  ctx: CallContext,
) => Promise<Res>;
export type BidiStreamingHandler<Req, Res> = (
  requests: AsyncIterable<Req>,
  ctx: CallContext,
  stream: ResponseStream<Res>,
) => Promise<void>;

export interface UnaryRpc<Req, Res> {
  readonly kind: "unary";
  readonly handler: UnaryHandler<Req, Res>;
  readonly options: RpcOptions;
}
export interface ServerStreamingRpc<Req, Res> {
  readonly kind: "serverStreaming";
  readonly handler: ServerStreamingHandler<Req, Res>;
  readonly options: RpcOptions;
}
export interface ClientStreamingRpc<Req, Res> {
  readonly kind: "clientStreaming";
  readonly handler: ClientStreamingHandler<Req, Res>;
  readonly options: RpcOptions;
}
export interface BidiStreamingRpc<Req, Res> {
  readonly kind: "bidiStreaming";
  readonly handler: BidiStreamingHandler<Req, Res>;
  readonly options: RpcOptions;
}

/** Any RPC implementation, with its types erased. */
export type AnyRpc =
  | UnaryRpc<never, unknown>
  | ServerStreamingRpc<never, unknown>
  | ClientStreamingRpc<never, unknown>
  | BidiStreamingRpc<never, unknown>;

/**
 * A unary RPC: resolve with the response, throw an `RpcError` for a status. Anything else
 * thrown becomes INTERNAL with a generic message (and is logged with its stack).
 */
export function unary<Req, Res>(
  handler: UnaryHandler<Req, Res>,
  options: RpcOptions = {},
): UnaryRpc<Req, Res> {
  return { kind: "unary", handler, options };
}

/** A server-streaming RPC: `await stream.send(msg)` per message; resolving ends the call with OK. */
export function serverStreaming<Req, Res>(
  handler: ServerStreamingHandler<Req, Res>,
  options: RpcOptions = {},
): ServerStreamingRpc<Req, Res> {
  return { kind: "serverStreaming", handler, options };
}

/** A client-streaming RPC: iterate the requests, resolve with the single response. */
export function clientStreaming<Req, Res>(
  handler: ClientStreamingHandler<Req, Res>,
  options: RpcOptions = {},
): ClientStreamingRpc<Req, Res> {
  return { kind: "clientStreaming", handler, options };
}

/**
 * A bidi-streaming RPC: iterate the requests and send responses independently (e.g. a reader
 * loop for acks beside a sender of queue messages); resolving ends the call with OK.
 */
export function bidiStreaming<Req, Res>(
  handler: BidiStreamingHandler<Req, Res>,
  options: RpcOptions = {},
): BidiStreamingRpc<Req, Res> {
  return { kind: "bidiStreaming", handler, options };
}

/** The implementation kind a method definition needs. */
export type RpcFor<M> = M extends { requestStream: true; responseStream: true }
  ? BidiStreamingRpc<RequestOf<M>, ResponseOf<M>>
  : M extends { requestStream: true }
    ? ClientStreamingRpc<RequestOf<M>, ResponseOf<M>>
    : M extends { responseStream: true }
      ? ServerStreamingRpc<RequestOf<M>, ResponseOf<M>>
      : UnaryRpc<RequestOf<M>, ResponseOf<M>>;

/** One implementation per method of the definition, typed from it. */
export type ServiceHandlers<D extends ServiceDefinitionLike> = { readonly [K in keyof D]: RpcFor<D[K]> };

/** A service definition together with its implementation, ready for `createGrpcServer`. */
export interface ServiceRegistration {
  /** Fully-qualified service name (also its health-check name). */
  readonly name: string;
  readonly definition: ServiceDefinitionLike;
  readonly handlers: Readonly<Record<string, AnyRpc>>;
}

function kindOf(method: MethodDefinitionLike): AnyRpc["kind"] {
  if (method.requestStream) return method.responseStream ? "bidiStreaming" : "clientStreaming";
  return method.responseStream ? "serverStreaming" : "unary";
}

/**
 * Pairs a service definition with its handlers. Request and response types of each handler are
 * inferred from the definition; a missing, extra or wrongly-streaming handler is rejected.
 */
export function defineService<D extends ServiceDefinitionLike>(
  definition: D,
  handlers: ServiceHandlers<D>,
): ServiceRegistration {
  const name = serviceNameOf(definition);
  const erased = handlers as unknown as Readonly<Record<string, AnyRpc | undefined>>;
  for (const [key, method] of Object.entries(definition)) {
    const rpc = erased[key];
    if (!rpc) throw new ServiceDefinitionError(`${name}: no handler for ${key}`);
    if (rpc.kind !== kindOf(method)) {
      throw new ServiceDefinitionError(`${name}: ${key} is ${kindOf(method)} but its handler is ${rpc.kind}`);
    }
  }
  for (const key of Object.keys(erased)) {
    if (!(key in definition)) throw new ServiceDefinitionError(`${name}: handler ${key} matches no method`);
  }
  return { name, definition, handlers: erased as Readonly<Record<string, AnyRpc>> };
}
