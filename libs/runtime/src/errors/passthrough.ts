import type { status } from "@grpc/grpc-js";
import type { StatusDetail } from "@phoenix/wire";
import { RpcError } from "./rpc-errors.js";

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
