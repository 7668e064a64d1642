import {
  type ChannelCredentials,
  type ChannelOptions,
  Client,
  type CallOptions as GrpcCallOptions,
  credentials as grpcCredentials,
  Metadata,
  type ServiceError,
  type status,
} from "@grpc/grpc-js";
import type { MethodDefinitionLike, RequestOf, ResponseOf, ServiceDefinitionLike } from "./definitions.js";
import { REQUEST_ID_KEY } from "./request-id.js";
import { decodeRichStatus, STATUS_DETAILS_KEY, type StatusDetail, statusName } from "./status-details.js";

/** A call to another service failed; carries the status the other side sent. */
export class GrpcCallError extends Error {
  override readonly name = "GrpcCallError";
  /** The status code, e.g. `status.NOT_FOUND`. */
  readonly code: status;
  /** The status message as sent. */
  readonly statusMessage: string;
  /** Typed details from `grpc-status-details-bin` (e.g. `phoenix.common.v1.ErrorDetail`). */
  readonly details: readonly StatusDetail[];
  readonly metadata: Metadata;
  /** `/pkg.Service/Method`. */
  readonly path: string;

  constructor(path: string, error: ServiceError) {
    super(`${path}: ${statusName(error.code)}: ${error.details}`);
    this.code = error.code;
    this.statusMessage = error.details;
    this.metadata = error.metadata ?? new Metadata();
    this.path = path;
    this.details = richDetails(this.metadata);
  }
}

function richDetails(metadata: Metadata): StatusDetail[] {
  const raw = metadata.get(STATUS_DETAILS_KEY)[0];
  if (!(raw instanceof Uint8Array)) return [];
  try {
    return decodeRichStatus(raw).details;
  } catch {
    return [];
  }
}

export interface CreateChannelOptions {
  /** Default: plaintext. */
  credentials?: ChannelCredentials;
  /** Largest message sent or received (match the server's `GRPC_MAX_MESSAGE_BYTES`). */
  maxMessageBytes?: number;
  channelOptions?: ChannelOptions;
}

/** A connection to `host:port`, shareable by the clients of several services; `.close()` it when done. */
export function createChannel(address: string, options: CreateChannelOptions = {}): Client {
  const limits =
    options.maxMessageBytes === undefined
      ? {}
      : {
          "grpc.max_receive_message_length": options.maxMessageBytes,
          "grpc.max_send_message_length": options.maxMessageBytes,
        };
  return new Client(address, options.credentials ?? grpcCredentials.createInsecure(), {
    ...options.channelOptions,
    ...limits,
  });
}

/**
 * The server call an outgoing call is made for (a server's handler context satisfies it): what
 * the outgoing call inherits from it.
 */
export interface ParentCall {
  /** Forwarded as `x-request-id` unless the call's metadata has one. */
  readonly requestId: string;
  /** Caps the outgoing call's deadline. */
  readonly deadline: Date | undefined;
  /** Cancels the outgoing call when it fires. */
  readonly signal: AbortSignal;
}

/** Per-call options of a service client. */
export interface ClientCallOptions {
  /** Deadline from now; default: the client's `defaultDeadlineMs` (unary, client-streaming). */
  deadlineMs?: number;
  /** Cancels the call. */
  signal?: AbortSignal;
  metadata?: Metadata;
  /**
   * The server call this one is made for: its remaining deadline caps this call's, its
   * cancellation cancels this call, and its request id is forwarded.
   */
  parent?: ParentCall;
}

export interface ServiceClientOptions {
  /** Deadline for unary and client-streaming calls without one (default 10 s; null: none). */
  defaultDeadlineMs?: number | null;
}

/** A bidi-streaming call from the client side. */
export interface BidiCall<Req, Res> {
  /** Sends one request; waits while the server reads slowly. */
  send(request: Req): Promise<void>;
  /** Half-closes: no more requests. */
  end(): void;
  /** Cancels the call; `responses` then throws CANCELLED. */
  cancel(): void;
  readonly responses: AsyncIterable<Res>;
}

export type ClientMethodFor<M> = M extends { requestStream: true; responseStream: true }
  ? (options?: ClientCallOptions) => BidiCall<RequestOf<M>, ResponseOf<M>>
  : M extends { requestStream: true }
    ? (
        requests: AsyncIterable<RequestOf<M>> | Iterable<RequestOf<M>>,
        options?: ClientCallOptions,
      ) => Promise<ResponseOf<M>>
    : M extends { responseStream: true }
      ? (request: RequestOf<M>, options?: ClientCallOptions) => AsyncIterable<ResponseOf<M>>
      : (request: RequestOf<M>, options?: ClientCallOptions) => Promise<ResponseOf<M>>;

/** Promise-based methods for every RPC of a service definition. */
export type ServiceClient<D extends ServiceDefinitionLike> = {
  readonly [K in keyof D]: ClientMethodFor<D[K]>;
};

interface PreparedCall {
  metadata: Metadata;
  options: GrpcCallOptions;
  /** Hooks `cancel` to the signals; returns the unhook function. */
  link(cancel: () => void): () => void;
}

function prepare(options: ClientCallOptions, defaultDeadlineMs: number | undefined): PreparedCall {
  const metadata = options.metadata?.clone() ?? new Metadata();
  const { parent } = options;
  if (parent && metadata.get(REQUEST_ID_KEY).length === 0) metadata.set(REQUEST_ID_KEY, parent.requestId);
  const own = options.deadlineMs ?? defaultDeadlineMs;
  let deadline = own === undefined ? Number.POSITIVE_INFINITY : Date.now() + own;
  if (parent?.deadline) deadline = Math.min(deadline, parent.deadline.getTime());
  const signals = [options.signal, parent?.signal].filter((s): s is AbortSignal => s !== undefined);
  return {
    metadata,
    options: Number.isFinite(deadline) ? { deadline } : {},
    link(cancel) {
      if (signals.length === 0) return () => {};
      if (signals.some((s) => s.aborted)) {
        queueMicrotask(cancel);
        return () => {};
      }
      for (const s of signals) s.addEventListener("abort", cancel, { once: true });
      return () => {
        for (const s of signals) s.removeEventListener("abort", cancel);
      };
    },
  };
}

function asCallError(path: string, error: unknown): unknown {
  return error instanceof Error && "code" in error && typeof error.code === "number" && "details" in error
    ? new GrpcCallError(path, error as ServiceError)
    : error;
}

type ErasedMethod = MethodDefinitionLike & {
  requestSerialize(value: unknown): Buffer;
};

/**
 * A promise-based client for one service over `channel`: unary calls resolve with the
 * response, streaming calls are async iterables, failures reject with {@link GrpcCallError}.
 * Unary and client-streaming calls get `defaultDeadlineMs` unless the call says otherwise.
 */
export function createServiceClient<D extends ServiceDefinitionLike>(
  definition: D,
  channel: Client,
  options: ServiceClientOptions = {},
): ServiceClient<D> {
  const defaultDeadlineMs =
    options.defaultDeadlineMs === null ? undefined : (options.defaultDeadlineMs ?? 10_000);
  const methods: Record<string, unknown> = {};
  for (const [key, def] of Object.entries(definition)) {
    const method = def as ErasedMethod;
    const serialize = (value: unknown) => method.requestSerialize(value);
    const deserialize = (bytes: Buffer) => method.responseDeserialize(bytes);
    const { path } = method;
    if (!method.requestStream && !method.responseStream) {
      methods[key] = (request: unknown, callOptions: ClientCallOptions = {}) => {
        const prepared = prepare(callOptions, defaultDeadlineMs);
        return new Promise((resolve, reject) => {
          let unlink = () => {};
          const call = channel.makeUnaryRequest(
            path,
            serialize,
            deserialize,
            request,
            prepared.metadata,
            prepared.options,
            (error, response) => {
              unlink();
              if (error) reject(asCallError(path, error));
              else resolve(response);
            },
          );
          unlink = prepared.link(() => call.cancel());
        });
      };
    } else if (!method.requestStream) {
      methods[key] = (request: unknown, callOptions: ClientCallOptions = {}) => {
        const prepared = prepare(callOptions, callOptions.deadlineMs);
        return readStream(path, () => {
          const call = channel.makeServerStreamRequest(
            path,
            serialize,
            deserialize,
            request,
            prepared.metadata,
            prepared.options,
          );
          return { call, unlink: prepared.link(() => call.cancel()) };
        });
      };
    } else if (!method.responseStream) {
      methods[key] = (
        requests: AsyncIterable<unknown> | Iterable<unknown>,
        callOptions: ClientCallOptions = {},
      ) => {
        const prepared = prepare(callOptions, defaultDeadlineMs);
        return new Promise((resolve, reject) => {
          let unlink = () => {};
          const call = channel.makeClientStreamRequest(
            path,
            serialize,
            deserialize,
            prepared.metadata,
            prepared.options,
            (error, response) => {
              unlink();
              if (error) reject(asCallError(path, error));
              else resolve(response);
            },
          );
          unlink = prepared.link(() => call.cancel());
          void (async () => {
            try {
              for await (const request of requests) {
                if (!call.write(request)) await waitForDrain(call);
              }
              call.end();
            } catch (error) {
              call.cancel();
              reject(error);
            }
          })();
        });
      };
    } else {
      methods[key] = (callOptions: ClientCallOptions = {}) => {
        const prepared = prepare(callOptions, callOptions.deadlineMs);
        const call = channel.makeBidiStreamRequest(
          path,
          serialize,
          deserialize,
          prepared.metadata,
          prepared.options,
        );
        const unlink = prepared.link(() => call.cancel());
        const bidi: BidiCall<unknown, unknown> = {
          async send(request) {
            if (!call.write(request)) await waitForDrain(call);
          },
          end: () => call.end(),
          cancel: () => call.cancel(),
          responses: readStream(path, () => ({ call, unlink })),
        };
        return bidi;
      };
    }
  }
  return methods as ServiceClient<D>;
}

interface Drainable {
  once(event: "drain" | "error" | "close", listener: () => void): unknown;
  off(event: "drain" | "error" | "close", listener: () => void): unknown;
}

function waitForDrain(call: Drainable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.off("drain", done);
      call.off("error", done);
      call.off("close", done);
      resolve();
    };
    call.once("drain", done);
    call.once("error", done);
    call.once("close", done);
  });
}

interface ReadableCall extends AsyncIterable<unknown> {
  cancel(): void;
  readableEnded: boolean;
}

async function* readStream(
  path: string,
  open: () => { call: ReadableCall; unlink: () => void },
): AsyncGenerator<unknown> {
  const { call, unlink } = open();
  let complete = false;
  try {
    for await (const message of call) yield message;
    complete = true;
  } catch (error) {
    throw asCallError(path, error);
  } finally {
    unlink();
    // The consumer stopped early: tell the server instead of leaving the stream open.
    if (!complete && !call.readableEnded) call.cancel();
  }
}
