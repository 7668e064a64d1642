import { status } from "@grpc/grpc-js";
import { common } from "@phoenix/proto";
import type { RichStatus } from "@phoenix/runtime/errors";
import { errorDetail as detail } from "@phoenix/runtime/errors";

/** An error the gateway answers itself (no upstream involved): HTTP status + google.rpc.Status. */
export class GatewayError extends Error {
  override readonly name = "GatewayError";
  constructor(
    readonly httpStatus: number,
    readonly status: RichStatus,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(status.message);
  }
}

export function notFound(method: string, path: string): GatewayError {
  return new GatewayError(404, {
    code: status.NOT_FOUND,
    message: `no route for ${method} ${path}`,
    details: [],
  });
}

export function methodNotAllowed(method: string, path: string, allow: readonly string[]): GatewayError {
  return new GatewayError(
    405,
    {
      code: status.UNIMPLEMENTED,
      message: `method ${method} is not allowed on ${path}; allowed: ${allow.join(", ")}`,
      details: [],
    },
    { allow: allow.join(", ") },
  );
}

export function malformed(message: string, field = ""): GatewayError {
  return new GatewayError(400, {
    code: status.INVALID_ARGUMENT,
    message,
    details: [
      detail({
        reason: common.ErrorReason.ERROR_REASON_MALFORMED,
        detail: field ? { $case: "fieldViolation", value: { field, description: message } } : undefined,
      }),
    ],
  });
}

export function unsupportedMediaType(message: string): GatewayError {
  return new GatewayError(415, {
    code: status.INVALID_ARGUMENT,
    message,
    details: [detail({ reason: common.ErrorReason.ERROR_REASON_MALFORMED, detail: undefined })],
  });
}

export function bodyTooLarge(limit: number, actual: number): GatewayError {
  return new GatewayError(
    413,
    {
      code: status.RESOURCE_EXHAUSTED,
      message: `request body is larger than the limit of ${limit} bytes`,
      details: [
        detail({
          reason: common.ErrorReason.ERROR_REASON_SIZE_LIMIT,
          detail: {
            $case: "limitExceeded",
            value: { subject: "request body", limit: BigInt(limit), actual: BigInt(actual) },
          },
        }),
      ],
    },
    { connection: "close" },
  );
}

/** Whole seconds for a Retry-After of `waitMs` (at least 1; a bucket that never refills: 60). */
export function retryAfterSeconds(waitMs: number): number {
  return Number.isFinite(waitMs) ? Math.max(1, Math.ceil(waitMs / 1000)) : 60;
}

export function rateLimited(retryAfterSeconds: number): GatewayError {
  return new GatewayError(
    429,
    {
      code: status.RESOURCE_EXHAUSTED,
      message: `too many requests from this address; retry in ${retryAfterSeconds} s`,
      details: [
        detail({
          reason: common.ErrorReason.ERROR_REASON_RATE_LIMIT,
          detail: {
            $case: "retry",
            value: { retryAfter: { seconds: BigInt(retryAfterSeconds), nanos: 0 } },
          },
        }),
      ],
    },
    { "retry-after": String(retryAfterSeconds) },
  );
}

export function internalError(): GatewayError {
  return new GatewayError(500, { code: status.INTERNAL, message: "internal error", details: [] });
}
