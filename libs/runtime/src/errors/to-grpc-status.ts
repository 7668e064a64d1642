import { Metadata, status } from "@grpc/grpc-js";
import { encodeRichStatus, STATUS_DETAILS_KEY } from "@phoenix/wire";
import { RpcError } from "./rpc-errors.js";

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
 * Longest status message sent (characters). Messages often echo client input (a domain, a
 * label); gRPC sends them in the trailers, and trailers beyond the peer's header limit never
 * arrive: the call hangs until its deadline and the HTTP/2 connection — shared, behind the edge
 * gateway, by every client — breaks. Longer messages are cut and marked.
 */
export const MAX_STATUS_MESSAGE_CHARS = 1024;
/** Largest encoded `grpc-status-details-bin`; richer details are left out (code and message stay). */
export const MAX_STATUS_DETAILS_BYTES = 4096;

/** `message`, cut to {@link MAX_STATUS_MESSAGE_CHARS} with a marker when longer. */
export function boundStatusMessage(message: string): string {
  if (message.length <= MAX_STATUS_MESSAGE_CHARS) return message;
  const cut = message.length - MAX_STATUS_MESSAGE_CHARS;
  return `${message.slice(0, MAX_STATUS_MESSAGE_CHARS)}… (${cut} characters truncated)`;
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
  const message = boundStatusMessage(error.message);
  if (error.details.length > 0) {
    const rich = encodeRichStatus({ code: error.code, message, details: [...error.details] });
    if (rich.length <= MAX_STATUS_DETAILS_BYTES) metadata.set(STATUS_DETAILS_KEY, Buffer.from(rich));
  }
  return { code: error.code, details: message, metadata, known: true };
}
