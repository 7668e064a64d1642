import {
  BadSignatureError,
  CryptoError,
  DecodeError,
  DomainMismatchError,
  ExpiredCredentialError,
  FutureTimestampError,
  InvalidInputError,
  NotYetValidCredentialError,
  ReplayError,
  RevokedCredentialError,
  StaleTimestampError,
  UnknownSignerError,
  UnsupportedCiphersuiteError,
  ValidityOutsideSignerError,
} from "@phoenix/crypto";
import { common } from "@phoenix/proto";
import {
  malformedField,
  errorDetail as phoenixErrorDetail,
  ResourceExhaustedError,
  type RpcError,
  unauthenticatedFor,
} from "@phoenix/runtime/errors";

// Every refusal of the AS is a runtime RpcError carrying a phoenix.common.v1.ErrorDetail, so
// clients get both a readable message and a machine-readable reason. The runtime maps these to
// gRPC statuses in its one place (toGrpcStatus); this file only builds them.

const Reason = common.ErrorReason;
type Reason = common.ErrorReason;

/** The status detail for `detail`. */
export function errorDetail(detail: common.ErrorDetail) {
  return phoenixErrorDetail(detail);
}

/** A detail with only a reason. */
export function reasonDetail(reason: Reason) {
  return errorDetail({ reason, detail: undefined });
}

/** INVALID_ARGUMENT naming the offending field (`tbs.handle`, `signed.signature`, …). */
export function malformed(
  field: string,
  description: string,
  reason: Reason = Reason.ERROR_REASON_MALFORMED,
) {
  return malformedField(field, description, reason);
}

/** RESOURCE_EXHAUSTED for a field or count over its documented limit. */
export function tooLarge(
  subject: string,
  limit: number,
  actual: number,
  reason: Reason = Reason.ERROR_REASON_SIZE_LIMIT,
) {
  return new ResourceExhaustedError(`${subject}: ${actual} exceeds the limit of ${limit}`, {
    details: [
      errorDetail({
        reason,
        detail: { $case: "limitExceeded", value: { subject, limit: BigInt(limit), actual: BigInt(actual) } },
      }),
    ],
  });
}

/** UNAUTHENTICATED with a reason. */
export function unauthenticated(message: string, reason: Reason) {
  return unauthenticatedFor(reason, message);
}

/**
 * Maps an error thrown by libs/crypto while checking `what` (a CSR, a package, a signature) to
 * the AS's refusal: undecodable objects are INVALID_ARGUMENT, failed proofs are UNAUTHENTICATED
 * (or INVALID_ARGUMENT where the contract says so, via `badSignatureIs`). Non-crypto errors pass
 * through unchanged.
 */
export function fromCryptoError(
  error: unknown,
  what: string,
  options: { badSignatureIs?: "unauthenticated" | "invalid" } = {},
): unknown {
  if (!(error instanceof CryptoError)) return error;
  if (
    error instanceof DecodeError ||
    error instanceof InvalidInputError ||
    error instanceof UnsupportedCiphersuiteError
  ) {
    return malformed(what, error.message);
  }
  if (error instanceof BadSignatureError) {
    return options.badSignatureIs === "invalid"
      ? malformed(what, error.message, Reason.ERROR_REASON_BAD_SIGNATURE)
      : unauthenticated(`${what}: ${error.message}`, Reason.ERROR_REASON_BAD_SIGNATURE);
  }
  if (error instanceof StaleTimestampError || error instanceof FutureTimestampError) {
    return unauthenticated(`${what}: ${error.message}`, Reason.ERROR_REASON_STALE_TIMESTAMP);
  }
  if (error instanceof ReplayError)
    return unauthenticated(`${what}: ${error.message}`, Reason.ERROR_REASON_REPLAYED_REQUEST);
  if (error instanceof DomainMismatchError) {
    return malformed(what, error.message, Reason.ERROR_REASON_WRONG_DOMAIN);
  }
  if (
    error instanceof ExpiredCredentialError ||
    error instanceof NotYetValidCredentialError ||
    error instanceof RevokedCredentialError ||
    error instanceof UnknownSignerError ||
    error instanceof ValidityOutsideSignerError
  ) {
    return malformed(what, error.message, Reason.ERROR_REASON_INVALID_CREDENTIAL);
  }
  return malformed(what, error.message);
}

/** Runs `fn`, translating crypto errors about `what` (see fromCryptoError). */
export function checking<T>(
  what: string,
  fn: () => T,
  options?: { badSignatureIs?: "unauthenticated" | "invalid" },
): T {
  try {
    return fn();
  } catch (error) {
    throw fromCryptoError(error, what, options);
  }
}

export type { RpcError };
