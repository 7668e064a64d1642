// How the client reads the DS's refusals of group operations: which of them mean "this client is
// behind" (catching up from the QS queue cures them) and which mean it was removed.
import { common, ERROR_DETAIL_TYPE_URL } from "@phoenix/proto";
import { GrpcCallError } from "@phoenix/wire";
import { FAILED_PRECONDITION, UNAUTHENTICATED } from "../constants.js";

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
