import { status } from "@grpc/grpc-js";
import type { StatusDetail } from "@phoenix/wire";

export interface RpcErrorOptions {
  /** Machine-readable details sent to the client beside the message. */
  details?: readonly StatusDetail[];
  /** The underlying error; logged, never sent to the client. */
  cause?: unknown;
}

/**
 * Base of every error a handler throws on purpose. Its message is sent to the client as the
 * status message, so it must name the problem without revealing secrets or internal state.
 */
export abstract class RpcError extends Error {
  abstract override readonly name: string;
  /** The gRPC status code the client receives. */
  abstract readonly code: status;
  readonly details: readonly StatusDetail[];

  constructor(message: string, options: RpcErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.details = options.details ?? [];
  }
}

/** The request is malformed or violates a documented format or limit of a field. */
export class InvalidArgumentError extends RpcError {
  override readonly name = "InvalidArgumentError";
  readonly code = status.INVALID_ARGUMENT;
}

/** The caller could not be authenticated: bad signature, stale timestamp, unknown sender. */
export class UnauthenticatedError extends RpcError {
  override readonly name = "UnauthenticatedError";
  readonly code = status.UNAUTHENTICATED;
}

/** The caller is authenticated but not allowed to do this. */
export class PermissionDeniedError extends RpcError {
  override readonly name = "PermissionDeniedError";
  readonly code = status.PERMISSION_DENIED;
}

/** The addressed entity does not exist. */
export class NotFoundError extends RpcError {
  override readonly name = "NotFoundError";
  readonly code = status.NOT_FOUND;
}

/** The entity the request would create exists already. */
export class AlreadyExistsError extends RpcError {
  override readonly name = "AlreadyExistsError";
  readonly code = status.ALREADY_EXISTS;
}

/**
 * The system is not in the state the request needs (wrong epoch, pending proposals). Attach the
 * state the client needs to recover (e.g. the current epoch) as a {@link StatusDetail}.
 */
export class FailedPreconditionError extends RpcError {
  override readonly name = "FailedPreconditionError";
  readonly code = status.FAILED_PRECONDITION;
}

/** A size, rate or quota limit was exceeded. */
export class ResourceExhaustedError extends RpcError {
  override readonly name = "ResourceExhaustedError";
  readonly code = status.RESOURCE_EXHAUSTED;
}

/** A dependency is down or the server is shutting down; the client may retry. */
export class UnavailableError extends RpcError {
  override readonly name = "UnavailableError";
  readonly code = status.UNAVAILABLE;
}

/** The call's deadline passed before the work finished. */
export class DeadlineExceededError extends RpcError {
  override readonly name = "DeadlineExceededError";
  readonly code = status.DEADLINE_EXCEEDED;
}

/** The client cancelled the call. */
export class CancelledError extends RpcError {
  override readonly name = "CancelledError";
  readonly code = status.CANCELLED;
}

/** The RPC (or this variant of it) is not implemented by this server. */
export class UnimplementedError extends RpcError {
  override readonly name = "UnimplementedError";
  readonly code = status.UNIMPLEMENTED;
}

/**
 * A deliberate INTERNAL status whose message is safe to show. Anything else that is thrown
 * becomes INTERNAL too, but with a generic message.
 */
export class InternalError extends RpcError {
  override readonly name = "InternalError";
  readonly code = status.INTERNAL;
}
