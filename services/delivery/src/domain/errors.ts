import { BadSignatureError as CryptoBadSignatureError, DecryptionError } from "@phoenix/crypto";
import {
  BadSignatureError,
  CredentialRejectedError,
  DuplicateLeafKeyError,
  MalformedMessageError,
  PublicGroupError,
  UnknownSenderError,
  WrongEpochError,
  WrongGroupError,
} from "@phoenix/mls";
import { common } from "@phoenix/proto";
import {
  FailedPreconditionError,
  InvalidArgumentError,
  malformedField,
  PermissionDeniedError,
  errorDetail as phoenixErrorDetail,
  ResourceExhaustedError,
  RpcError,
  type StatusDetail,
  type UnauthenticatedError,
  unauthenticatedFor,
} from "@phoenix/runtime/errors";

const { ErrorReason } = common;

/** The `ErrorDetail` of a DS status, packed for the `grpc-status-details-bin` trailer. */
export function errorDetail(detail: common.ErrorDetail): StatusDetail {
  return phoenixErrorDetail(detail);
}

function reasonOnly(reason: common.ErrorReason): { details: StatusDetail[] } {
  return { details: [errorDetail({ reason, detail: undefined })] };
}

/** INVALID_ARGUMENT / MALFORMED naming the field. */
export function malformed(field: string, description: string): InvalidArgumentError {
  return malformedField(field, description);
}

/** INVALID_ARGUMENT / INVALID_MLS: the MLS content breaks RFC 9420 or a Phoenix DS rule. */
export function invalidMls(message: string, cause?: unknown): InvalidArgumentError {
  return new InvalidArgumentError(message, { ...reasonOnly(ErrorReason.ERROR_REASON_INVALID_MLS), cause });
}

/** RESOURCE_EXHAUSTED / SIZE_LIMIT for a field over its documented limit. */
export function sizeLimit(subject: string, limit: number, actual: number): ResourceExhaustedError {
  return new ResourceExhaustedError(`${subject} is ${actual} bytes, the limit is ${limit}`, {
    details: [
      errorDetail({
        reason: ErrorReason.ERROR_REASON_SIZE_LIMIT,
        detail: {
          $case: "limitExceeded",
          value: { subject, limit: BigInt(limit), actual: BigInt(actual) },
        },
      }),
    ],
  });
}

/** UNAUTHENTICATED with a reason. */
export function unauthenticated(reason: common.ErrorReason, message: string): UnauthenticatedError {
  return unauthenticatedFor(reason, message);
}

/**
 * UNAUTHENTICATED / WRONG_EAR_KEY: the key does not open the stored state. The DS cannot tell a
 * wrong key from one that a removal rotated away (it keeps no trace of old keys), so the message
 * names both: a member that is behind catches up from its queue and retries.
 */
export function wrongEarKey(): UnauthenticatedError {
  return unauthenticated(
    ErrorReason.ERROR_REASON_WRONG_EAR_KEY,
    "the group state EAR key does not decrypt the group: a wrong key, or one replaced by a commit " +
      "that removes a member (the group's key rotates then; process that commit and retry with the new key)",
  );
}

/** PERMISSION_DENIED / NOT_ADMIN. */
export function notAdmin(message: string): PermissionDeniedError {
  return new PermissionDeniedError(message, reasonOnly(ErrorReason.ERROR_REASON_NOT_ADMIN));
}

/** FAILED_PRECONDITION / WRONG_EPOCH with the group's epoch. */
export function wrongEpoch(currentEpoch: bigint, requestEpoch: bigint): FailedPreconditionError {
  return new FailedPreconditionError(
    `message is for epoch ${requestEpoch}, the group is at epoch ${currentEpoch}`,
    {
      details: [
        errorDetail({
          reason: ErrorReason.ERROR_REASON_WRONG_EPOCH,
          detail: { $case: "wrongEpoch", value: { currentEpoch, requestEpoch } },
        }),
      ],
    },
  );
}

/** FAILED_PRECONDITION / PENDING_PROPOSALS listing what the commit must include. */
export function pendingProposals(
  message: string,
  pending: { refs: Uint8Array[]; proposals: Uint8Array[]; required: common.RequiredRemoval[] },
): FailedPreconditionError {
  return new FailedPreconditionError(message, {
    details: [
      errorDetail({
        reason: ErrorReason.ERROR_REASON_PENDING_PROPOSALS,
        detail: {
          $case: "pendingProposals",
          value: {
            proposalRefs: pending.refs,
            proposals: pending.proposals,
            requiredRemovals: pending.required,
          },
        },
      }),
    ],
  });
}

/**
 * THE mapping of validator (libs/mls PublicGroupError) and crypto failures to statuses, installed
 * as the gRPC server's `translateError` hook: signature failures are UNAUTHENTICATED, a stale
 * epoch FAILED_PRECONDITION, everything else about the MLS content INVALID_ARGUMENT. Anything else
 * (RpcErrors included) is not ours to translate: undefined.
 */
export function translateDeliveryError(error: unknown): RpcError | undefined {
  if (error instanceof WrongEpochError) return wrongEpoch(error.expected, error.actual);
  if (error instanceof BadSignatureError)
    return unauthenticated(
      ErrorReason.ERROR_REASON_BAD_SIGNATURE,
      `MLS signature rejected: ${error.message}`,
    );
  if (error instanceof UnknownSenderError)
    return unauthenticated(ErrorReason.ERROR_REASON_UNKNOWN_SENDER, `MLS sender rejected: ${error.message}`);
  if (error instanceof MalformedMessageError)
    return new InvalidArgumentError(error.message, reasonOnly(ErrorReason.ERROR_REASON_MALFORMED));
  if (error instanceof WrongGroupError) return invalidMls(`MLS message for another group: ${error.message}`);
  if (error instanceof CredentialRejectedError || error instanceof DuplicateLeafKeyError)
    return invalidMls(error.message);
  if (error instanceof PublicGroupError) return invalidMls(error.message, error);
  if (error instanceof CryptoBadSignatureError)
    return unauthenticated(ErrorReason.ERROR_REASON_BAD_SIGNATURE, error.message);
  if (error instanceof DecryptionError) return wrongEarKey();
  return undefined;
}

/** Whether an error refuses the request (a client's fault, answered with a status) rather than a bug. */
export function isRefusal(error: unknown): boolean {
  return error instanceof RpcError || translateDeliveryError(error) !== undefined;
}
