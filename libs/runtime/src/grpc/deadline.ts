import { CancelledError, DeadlineExceededError, type RpcError } from "../errors/rpc-errors.js";

/** Milliseconds since the epoch of a grpc-js deadline (`Infinity` when none). */
export function deadlineMillis(deadline: Date | number): number {
  return deadline instanceof Date ? deadline.getTime() : deadline;
}

/**
 * Why a call the client abandoned ended. A client whose deadline passes just resets the stream,
 * exactly like a cancel, and the reset arrives around the server's copy of the deadline (which
 * started later, when the headers arrived). A reset close to the deadline is therefore taken as
 * the deadline: within half the timeout, at most 250 ms.
 */
export function abandonReason(deadlineMs: number, receivedAtMs: number, nowMs = Date.now()): RpcError {
  if (Number.isFinite(deadlineMs)) {
    const tolerance = Math.min(250, (deadlineMs - receivedAtMs) / 2);
    if (nowMs >= deadlineMs - tolerance) return new DeadlineExceededError("deadline exceeded");
  }
  return new CancelledError("cancelled by the client");
}
