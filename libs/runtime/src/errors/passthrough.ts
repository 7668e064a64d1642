import type { status } from "@grpc/grpc-js";
import { RpcError, type StatusDetail } from "./rpc-errors.js";

/**
 * A status that passes through this process unchanged — code, message and typed details — e.g.
 * what a peer homeserver answered a forwarded request. Never built from local failures.
 */
export class PassthroughStatusError extends RpcError {
  override readonly name = "PassthroughStatusError";
  readonly code: status;

  constructor(code: status, message: string, details: readonly StatusDetail[]) {
    super(message, { details });
    this.code = code;
  }
}
