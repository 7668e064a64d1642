import { Metadata, status } from "@grpc/grpc-js";
import { RpcError } from "./rpc-errors.js";
import { encodeRichStatus, STATUS_DETAILS_KEY } from "./status-details.js";

/** What the client is told when a handler throws something that is not an {@link RpcError}. */
export const INTERNAL_ERROR_MESSAGE = "internal error";

/** A status ready for grpc-js (`callback(status)` / `call.emit("error", status)`). */
export interface RpcStatus {
  code: status;
  details: string;
  metadata: Metadata;
  /**
   * False when the thrown value was not an {@link RpcError}: the client received a generic
   * INTERNAL and the original error must be logged, since it is the only trace of the cause.
   */
  known: boolean;
}

/**
 * THE mapping from anything a handler throws to the status the client sees. An {@link RpcError}
 * keeps its code, message and details; anything else becomes INTERNAL with a generic message so
 * that stack traces, SQL or key material never reach a client.
 */
export function toGrpcStatus(error: unknown): RpcStatus {
  const metadata = new Metadata();
  if (!(error instanceof RpcError)) {
    return { code: status.INTERNAL, details: INTERNAL_ERROR_MESSAGE, metadata, known: false };
  }
  if (error.details.length > 0) {
    const rich = encodeRichStatus({ code: error.code, message: error.message, details: [...error.details] });
    metadata.set(STATUS_DETAILS_KEY, Buffer.from(rich));
  }
  return { code: error.code, details: error.message, metadata, known: true };
}

/** The canonical upper-case name of a status code, e.g. `RESOURCE_EXHAUSTED` (for logs and metrics). */
export function statusName(code: number): string {
  return status[code] ?? `CODE_${code}`;
}
