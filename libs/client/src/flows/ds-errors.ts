// How the client reads the DS's refusals of group operations: which of them mean "this client is
// behind" (catching up from the QS queue cures them) and which mean it was removed.
import { common, ERROR_DETAIL_TYPE_URL } from "@phoenix/proto";
import { GrpcCallError } from "@phoenix/wire";
import {
  DEADLINE_EXCEEDED,
  FAILED_PRECONDITION,
  INTERNAL,
  UNAUTHENTICATED,
  UNAVAILABLE,
  UNKNOWN,
} from "../constants.js";

/**
 * Whether the DS refused a group operation because this client is behind: another member's commit
 * is ahead, or stored proposals must be included (FAILED_PRECONDITION); a commit this client
 * has not processed yet removed it ({@link leafUnknownToDs}) or rotated the group's EAR key
 * ({@link earKeyRotated}).
 */
export function catchUpMayHelp(error: unknown): boolean {
  if (!(error instanceof GrpcCallError)) return false;
  return error.code === FAILED_PRECONDITION || leafUnknownToDs(error) || earKeyRotated(error);
}

/** Whether another member's commit got in first (the DS's epoch is ahead). */
export function epochAhead(error: unknown): boolean {
  return error instanceof GrpcCallError && error.code === FAILED_PRECONDITION;
}

/**
 * Whether the DS refused the group's EAR key (UNAUTHENTICATED, WRONG_EAR_KEY): a commit that
 * removed a member rotated it and this client has not processed that commit yet — it derives
 * the new key when it does.
 */
export function earKeyRotated(error: unknown): boolean {
  return (
    error instanceof GrpcCallError &&
    error.code === UNAUTHENTICATED &&
    errorReason(error) === common.ErrorReason.ERROR_REASON_WRONG_EAR_KEY
  );
}

/**
 * Whether the DS refused a request signed by this client's leaf because the leaf is no longer
 * there — blank (UNAUTHENTICATED, unknown sender) or given to a joiner (UNAUTHENTICATED, bad
 * signature): a commit removed this client, and it is in (or on its way to) the client's queue.
 */
export function leafUnknownToDs(error: unknown): boolean {
  if (!(error instanceof GrpcCallError) || error.code !== UNAUTHENTICATED) return false;
  const reason = errorReason(error);
  return (
    reason === common.ErrorReason.ERROR_REASON_UNKNOWN_SENDER ||
    reason === common.ErrorReason.ERROR_REASON_BAD_SIGNATURE
  );
}

/**
 * Whether a failed call may still have been applied: the connection broke or the answer was lost
 * (UNAVAILABLE, DEADLINE_EXCEEDED, or UNKNOWN/INTERNAL from a proxy or a dying server) — as
 * opposed to a refusal, which the DS sends only for what it did not apply.
 */
export function outcomeUnknown(error: unknown): boolean {
  if (!(error instanceof GrpcCallError)) return false;
  return [UNAVAILABLE, DEADLINE_EXCEEDED, UNKNOWN, INTERNAL].includes(error.code);
}

/** Whether the DS refused a request id it has seen before (UNAUTHENTICATED, REPLAYED_REQUEST). */
export function replayed(error: unknown): boolean {
  return (
    error instanceof GrpcCallError &&
    error.code === UNAUTHENTICATED &&
    errorReason(error) === common.ErrorReason.ERROR_REASON_REPLAYED_REQUEST
  );
}

/**
 * Makes a signed DS call that must take effect at most once, and tells whether it did. On a
 * failure that leaves the outcome open it sends the very same request again (same request id,
 * same ciphertext) until `retryForMs` passes: a DS that applied the first attempt refuses the
 * copy as a replay, which means the request went through. A fresh request instead (re-encrypted
 * by the caller) would repeat the MLS generation of a message that may have arrived — its
 * recipients could not decrypt the copy — or, after a commit, deliver the text twice.
 */
export async function callOnce(call: () => Promise<unknown>, retryForMs = 60_000): Promise<void> {
  const deadline = Date.now() + retryForMs;
  let sent = false;
  for (let attempt = 0; ; attempt++) {
    try {
      await call();
      return;
    } catch (error) {
      if (sent && replayed(error)) return;
      if (!outcomeUnknown(error) || Date.now() >= deadline) throw error;
      sent = true;
      await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 100 * 2 ** attempt)));
    }
  }
}

/** The reason of the Phoenix ErrorDetail a failed call carries, if any. */
function errorReason(error: GrpcCallError): common.ErrorReason | undefined {
  const packed = error.details.find((d) => d.typeUrl === ERROR_DETAIL_TYPE_URL);
  if (packed === undefined) return undefined;
  try {
    return common.ErrorDetail.decode(packed.value).reason;
  } catch {
    return undefined;
  }
}
