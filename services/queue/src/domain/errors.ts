import { common } from "@phoenix/proto";
import {
  InvalidArgumentError,
  malformedField,
  NotFoundError,
  errorDetail as phoenixErrorDetail,
  ResourceExhaustedError,
  type StatusDetail,
  type UnauthenticatedError,
  UnavailableError,
  unauthenticatedFor,
} from "@phoenix/runtime/errors";

const { ErrorReason } = common;

/** The `ErrorDetail` of a QS status, packed for the `grpc-status-details-bin` trailer. */
export function errorDetail(detail: common.ErrorDetail): StatusDetail {
  return phoenixErrorDetail(detail);
}

/** INVALID_ARGUMENT / MALFORMED naming the field. */
export function malformed(field: string, description: string): InvalidArgumentError {
  return malformedField(field, description);
}

/** INVALID_ARGUMENT with another reason (e.g. EXPIRED, WRONG_DOMAIN). */
export function invalid(reason: common.ErrorReason, message: string): InvalidArgumentError {
  return new InvalidArgumentError(message, { details: [errorDetail({ reason, detail: undefined })] });
}

/** UNAUTHENTICATED with its reason. */
export function unauthenticated(reason: common.ErrorReason, message: string): UnauthenticatedError {
  return unauthenticatedFor(reason, message);
}

/** RESOURCE_EXHAUSTED / SIZE_LIMIT for a field over its documented limit. */
export function sizeLimit(subject: string, limit: number, actual: number): ResourceExhaustedError {
  return new ResourceExhaustedError(`${subject} is ${actual} bytes, the limit is ${limit}`, {
    details: [
      errorDetail({
        reason: ErrorReason.ERROR_REASON_SIZE_LIMIT,
        detail: { $case: "limitExceeded", value: { subject, limit: BigInt(limit), actual: BigInt(actual) } },
      }),
    ],
  });
}

/** RESOURCE_EXHAUSTED / QUOTA for a count limit (clients per user, AddPackages, blocklist). */
export function quota(subject: string, limit: number, actual: number): ResourceExhaustedError {
  return new ResourceExhaustedError(`${subject}: at most ${limit} allowed`, {
    details: [
      errorDetail({
        reason: ErrorReason.ERROR_REASON_QUOTA,
        detail: { $case: "limitExceeded", value: { subject, limit: BigInt(limit), actual: BigInt(actual) } },
      }),
    ],
  });
}

/** NOT_FOUND for a friendship token no user record holds (unknown and rotated look the same). */
export function unknownFriendshipToken(): NotFoundError {
  return new NotFoundError("no user record holds this friendship token");
}

/** UNAVAILABLE while the QS keys are not loaded. */
export function keysUnavailable(): UnavailableError {
  return new UnavailableError("the QS keys are not loaded yet");
}
