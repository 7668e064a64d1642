import { common } from "@phoenix/proto";
import { InvalidArgumentError, type StatusDetail, statusDetail, UnauthenticatedError } from "./rpc-errors.js";

/** The type name every Phoenix refusal carries its machine-readable reason under. */
export const ERROR_DETAIL_TYPE = "phoenix.common.v1.ErrorDetail";

/** `detail` packed as a status detail (`grpc-status-details-bin`). */
export function errorDetail(detail: common.ErrorDetail): StatusDetail {
  return statusDetail(ERROR_DETAIL_TYPE, common.ErrorDetail.encode(detail).finish());
}

/** INVALID_ARGUMENT / MALFORMED (or another `reason`) naming the offending field. */
export function malformedField(
  field: string,
  description: string,
  reason: common.ErrorReason = common.ErrorReason.ERROR_REASON_MALFORMED,
): InvalidArgumentError {
  return new InvalidArgumentError(`${field}: ${description}`, {
    details: [errorDetail({ reason, detail: { $case: "fieldViolation", value: { field, description } } })],
  });
}

/** UNAUTHENTICATED with a reason only. */
export function unauthenticatedFor(reason: common.ErrorReason, message: string): UnauthenticatedError {
  return new UnauthenticatedError(message, { details: [errorDetail({ reason, detail: undefined })] });
}
