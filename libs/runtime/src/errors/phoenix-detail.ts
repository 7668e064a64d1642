import { common } from "@phoenix/proto";
import { errorDetail } from "@phoenix/wire";
import { InvalidArgumentError, ResourceExhaustedError, UnauthenticatedError } from "./rpc-errors.js";

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

/**
 * RESOURCE_EXHAUSTED for a queue at its depth cap: "<queue> full: holds <limit> messages (<VARIABLE>)",
 * reason QUOTA with a `limit_exceeded` detail. Nothing is stored: the sender retries once the
 * owner has drained the queue (or its messages expired). Shared by the AS and QS queues so
 * clients see one wording.
 */
export function queueFull(queue: string, limit: number, variable: string): ResourceExhaustedError {
  return new ResourceExhaustedError(`${queue} full: holds ${limit} messages (${variable}=${limit})`, {
    details: [
      errorDetail({
        reason: common.ErrorReason.ERROR_REASON_QUOTA,
        detail: {
          $case: "limitExceeded",
          value: { subject: queue, limit: BigInt(limit), actual: BigInt(limit) },
        },
      }),
    ],
  });
}
