import {
  type ChannelCredentials,
  type ChannelOptions,
  Client,
  credentials as grpcCredentials,
  Metadata,
  type status,
} from "@grpc/grpc-js";
import {
  type CallOptions,
  type Channel as ChannelImplementation,
  ClientError,
  type ClientMiddleware,
  type ClientMiddlewareCall,
  type CompatServiceDefinition,
  createClientFactory,
  Metadata as NiceMetadata,
  Status,
} from "nice-grpc";
import {
  type AnyServiceDefinition,
  isGeneratedDefinition,
  type MethodsOf,
  type RequestOf,
  type ResponseOf,
} from "./definitions.js";
import { REQUEST_ID_KEY } from "./request-id.js";
import { decodeRichStatus, STATUS_DETAILS_KEY, type StatusDetail, statusName } from "./status-details.js";

/** The status of a failed call as grpc-js reports it (`ServiceError`), or built from nice-grpc's. */
export interface CallStatusLike {
  readonly code: number;
  /** The status message. */
  readonly details: string;
  /** The trailers. */
  readonly metadata?: Metadata | undefined;
}

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

  constructor(path: string, error: CallStatusLike) {
    super(`${path}: ${statusName(error.code)}: ${error.details}`);
    this.code = error.code as status;
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

/**
 * Reconnect backoff of every channel unless `channelOptions` says otherwise: grpc-js's default
 * grows to 120 s, so a caller whose upstream was down for a while (a pod restart, a crash) kept
 * failing with "No connection established" for up to two minutes after it was back. Capped at
 * 2 s, a restarted service is reached within about 2 s of listening; the cost is one connection
 * attempt per 2 s per caller while it is down.
 */
export const RECONNECT_BACKOFF: Readonly<ChannelOptions> = {
  "grpc.initial_reconnect_backoff_ms": 250,
  "grpc.max_reconnect_backoff_ms": 2000,
};

/** The grpc-js options of a channel made with `options` (see {@link createChannel}). */
export function channelOptionsOf(options: CreateChannelOptions = {}): ChannelOptions {
  const limits =
    options.maxMessageBytes === undefined
      ? {}
      : {
          "grpc.max_receive_message_length": options.maxMessageBytes,
          "grpc.max_send_message_length": options.maxMessageBytes,
        };
  return { ...RECONNECT_BACKOFF, ...options.channelOptions, ...limits };
}

/** A connection to `host:port`, shareable by the clients of several services; `.close()` it when done. */
export function createChannel(address: string, options: CreateChannelOptions = {}): Client {
  return new Client(
    address,
    options.credentials ?? grpcCredentials.createInsecure(),
    channelOptionsOf(options),
  );
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

/** Call options {@link phoenixCallMiddleware} adds to a nice-grpc client's calls. */
export interface PhoenixCallOptions {
  /**
   * When the call fails with DEADLINE_EXCEEDED (a `Date` or epoch milliseconds). It is sent to
   * the server as `grpc-timeout`, so the server's handler sees it and can pass it on.
   */
  deadline?: Date | number;
  /** The server call this one is made for (see {@link ClientCallOptions.parent}). */
  parent?: ParentCall;
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
export type ServiceClient<D extends AnyServiceDefinition> = {
  readonly [K in keyof MethodsOf<D>]: ClientMethodFor<MethodsOf<D>[K]>;
};

// The longest timer Node arms (about 24.8 days); a later deadline is only sent, not timed here.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The `grpc-timeout` header value for `ms` milliseconds (at most 8 digits, then a unit). */
function grpcTimeout(ms: number): string {
  const whole = Math.max(0, Math.ceil(ms));
  if (whole < 1e8) return `${whole}m`;
  const seconds = Math.ceil(whole / 1000);
  if (seconds < 1e8) return `${seconds}S`;
  return `${Math.min(Math.ceil(seconds / 3600), 99_999_999)}H`;
}

/** nice-grpc's trailers as grpc-js `Metadata` (what {@link GrpcCallError} carries). */
function toGrpcMetadata(trailer: NiceMetadata | undefined): Metadata {
  const metadata = new Metadata();
  if (!trailer) return metadata;
  for (const [key, values] of trailer) {
    for (const value of values) {
      if (key.endsWith("-bin")) metadata.add(key, Buffer.from(value as Uint8Array));
      else if (typeof value === "string") metadata.add(key, value);
    }
  }
  return metadata;
}

function toNiceMetadata(metadata: Metadata | undefined): NiceMetadata {
  const result = NiceMetadata();
  if (!metadata) return result;
  for (const [key, values] of Object.entries(metadata.toJSON())) {
    for (const value of values) result.append(key, typeof value === "string" ? value : new Uint8Array(value));
  }
  return result;
}

function isAbortError(error: unknown): boolean {
  return error instanceof Error && error.name === "AbortError";
}

async function* callMiddleware<Request, Response>(
  call: ClientMiddlewareCall<Request, Response>,
  options: CallOptions & Partial<PhoenixCallOptions>,
) {
  const { deadline: ownDeadline, parent, signal, metadata: given, onTrailer, ...rest } = options;
  const path = call.method.path;
  const metadata = NiceMetadata(given);
  if (parent && !metadata.has(REQUEST_ID_KEY)) metadata.set(REQUEST_ID_KEY, parent.requestId);
  let deadline =
    ownDeadline === undefined
      ? Number.POSITIVE_INFINITY
      : ownDeadline instanceof Date
        ? ownDeadline.getTime()
        : ownDeadline;
  if (parent?.deadline) deadline = Math.min(deadline, parent.deadline.getTime());

  const controller = new AbortController();
  let ending: "cancelled" | "expired" | undefined;
  const stop = (why: "cancelled" | "expired") => {
    ending ??= why;
    controller.abort();
  };
  const cancel = () => stop("cancelled");
  const signals = [signal, parent?.signal].filter((s): s is AbortSignal => s !== undefined);
  for (const s of signals) {
    if (s.aborted) cancel();
    else s.addEventListener("abort", cancel, { once: true });
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  if (Number.isFinite(deadline)) {
    const remaining = Math.max(0, deadline - Date.now());
    // grpc-js sends a `grpc-timeout` only for its own deadline option, which nice-grpc does not
    // expose; set on the request metadata it reaches the server the same way.
    metadata.set("grpc-timeout", grpcTimeout(remaining));
    if (remaining <= MAX_TIMER_MS) timer = setTimeout(() => stop("expired"), remaining);
  }
  let trailer: NiceMetadata | undefined;
  try {
    return yield* call.next(call.request, {
      ...rest,
      metadata,
      signal: controller.signal,
      onTrailer(received) {
        trailer = received;
        onTrailer?.(received);
      },
    });
  } catch (error) {
    if (error instanceof ClientError) {
      throw new GrpcCallError(path, {
        code: error.code,
        details: error.details,
        metadata: toGrpcMetadata(trailer),
      });
    }
    if (isAbortError(error) && ending === "expired") {
      throw new GrpcCallError(path, { code: Status.DEADLINE_EXCEEDED, details: "Deadline exceeded" });
    }
    if (isAbortError(error) && ending === "cancelled") {
      throw new GrpcCallError(path, { code: Status.CANCELLED, details: "Cancelled on client" });
    }
    throw error;
  } finally {
    clearTimeout(timer);
    for (const s of signals) s.removeEventListener("abort", cancel);
  }
}

/**
 * nice-grpc client middleware for calls between Phoenix services and from Phoenix clients:
 * adds the `deadline` and `parent` call options (the deadline travels as `grpc-timeout`; the
 * parent call's request id, deadline and cancellation carry over) and turns every failure into
 * a {@link GrpcCallError} whose `details` hold the decoded `grpc-status-details-bin`
 * (`phoenix.common.v1.ErrorDetail`). Use it with `createClientFactory().use(phoenixCallMiddleware)`.
 */
export const phoenixCallMiddleware: ClientMiddleware<PhoenixCallOptions> = callMiddleware;

const factory = createClientFactory().use(phoenixCallMiddleware);

type NiceCallOptions = CallOptions & PhoenixCallOptions;
type NiceMethod = (request: unknown, options: NiceCallOptions) => unknown;

function niceOptions(options: ClientCallOptions, deadlineMs: number | undefined): NiceCallOptions {
  return {
    ...(options.metadata ? { metadata: toNiceMetadata(options.metadata) } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.parent ? { parent: options.parent } : {}),
    ...(deadlineMs === undefined ? {} : { deadline: Date.now() + deadlineMs }),
  };
}

async function* fromIterable<T>(items: AsyncIterable<T> | Iterable<T>): AsyncGenerator<T> {
  yield* items;
}

/**
 * Requests of a bidi call as an async iterable nice-grpc pulls from: `send` resolves once its
 * request was taken, i.e. after the earlier ones were written (the transport's backpressure).
 */
class RequestQueue<T> implements AsyncIterable<T> {
  private readonly items: { value: T; taken: () => void }[] = [];
  private waiting: ((result: IteratorResult<T>) => void) | undefined;
  private closed = false;

  push(value: T): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((taken) => {
      const waiting = this.waiting;
      if (waiting) {
        this.waiting = undefined;
        taken();
        waiting({ value, done: false });
      } else {
        this.items.push({ value, taken });
      }
    });
  }

  /** No more requests; pending `send`s resolve (their requests are dropped when `dropped`). */
  close(dropped: boolean): void {
    this.closed = true;
    if (dropped) for (const item of this.items.splice(0)) item.taken();
    if (this.items.length === 0) {
      this.waiting?.({ value: undefined, done: true });
      this.waiting = undefined;
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        const item = this.items.shift();
        if (item) {
          item.taken();
          return Promise.resolve({ value: item.value, done: false });
        }
        if (this.closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => {
          this.waiting = resolve;
        });
      },
      // nice-grpc stops reading when the call ends: later `send`s must not wait for it.
      return: () => {
        this.close(true);
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

function bidiCall(method: NiceMethod, options: ClientCallOptions): BidiCall<unknown, unknown> {
  const requests = new RequestQueue<unknown>();
  const cancelling = new AbortController();
  const signal = options.signal;
  const call = { ...options, signal: cancelling.signal };
  const forward = () => cancelling.abort();
  if (signal?.aborted) forward();
  else signal?.addEventListener("abort", forward, { once: true });
  const iterator = (method(requests, niceOptions(call, options.deadlineMs)) as AsyncIterable<unknown>)[
    Symbol.asyncIterator
  ]();
  // Start the call now (nice-grpc starts it on the first read), so requests sent before anyone
  // reads the responses go out at once.
  const first = iterator.next();
  first.catch(() => {});
  async function* responses(): AsyncGenerator<unknown> {
    let complete = false;
    try {
      for (let result = await first; !result.done; result = await iterator.next()) yield result.value;
      complete = true;
    } finally {
      requests.close(true);
      signal?.removeEventListener("abort", forward);
      // The consumer stopped early: end the call instead of leaving it open.
      if (!complete) await iterator.return?.();
    }
  }
  return {
    send: (request) => requests.push(request),
    end: () => requests.close(false),
    cancel: () => cancelling.abort(),
    responses: responses(),
  };
}

/**
 * A promise-based client for one service over `channel`: unary calls resolve with the
 * response, streaming calls are async iterables, failures reject with {@link GrpcCallError}.
 * Unary and client-streaming calls get `defaultDeadlineMs` unless the call says otherwise.
 * `definition` is a generated `<Service>Definition` from @phoenix/proto (or a grpc-js shaped
 * one, e.g. for raw bytes); the calls are nice-grpc's with {@link phoenixCallMiddleware}.
 */
export function createServiceClient<D extends AnyServiceDefinition>(
  definition: D,
  channel: Client,
  options: ServiceClientOptions = {},
): ServiceClient<D> {
  const defaultDeadlineMs =
    options.defaultDeadlineMs === null ? undefined : (options.defaultDeadlineMs ?? 10_000);
  const nice = factory.create(
    definition as CompatServiceDefinition,
    channel.getChannel() as ChannelImplementation,
  ) as Record<string, NiceMethod>;
  const shapes: Record<string, { requestStream: boolean; responseStream: boolean }> = isGeneratedDefinition(
    definition,
  )
    ? definition.methods
    : definition;
  const methods: Record<string, unknown> = {};
  for (const [key, shape] of Object.entries(shapes)) {
    const method = nice[key];
    if (!method) continue;
    if (!shape.requestStream && !shape.responseStream) {
      methods[key] = (request: unknown, callOptions: ClientCallOptions = {}) =>
        method(request, niceOptions(callOptions, callOptions.deadlineMs ?? defaultDeadlineMs));
    } else if (!shape.requestStream) {
      methods[key] = (request: unknown, callOptions: ClientCallOptions = {}) =>
        method(request, niceOptions(callOptions, callOptions.deadlineMs));
    } else if (!shape.responseStream) {
      methods[key] = (
        requests: AsyncIterable<unknown> | Iterable<unknown>,
        callOptions: ClientCallOptions = {},
      ) =>
        method(fromIterable(requests), niceOptions(callOptions, callOptions.deadlineMs ?? defaultDeadlineMs));
    } else {
      methods[key] = (callOptions: ClientCallOptions = {}) => bidiCall(method, callOptions);
    }
  }
  return methods as ServiceClient<D>;
}
