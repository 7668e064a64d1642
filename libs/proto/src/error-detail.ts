import { Status } from "./gen/google/rpc/status.js";
import { ErrorDetail } from "./gen/phoenix/common/v1/common.js";

/** The standard gRPC trailer that carries a google.rpc.Status with details. */
export const STATUS_DETAILS_KEY = "grpc-status-details-bin";

/** Type URL of a phoenix.common.v1.ErrorDetail packed into google.protobuf.Any. */
export const ERROR_DETAIL_TYPE_URL = "type.googleapis.com/phoenix.common.v1.ErrorDetail";

/**
 * Encodes the `grpc-status-details-bin` trailer value for an error status: a google.rpc.Status
 * with the same code and message whose details hold `detail`.
 */
export function encodeStatusDetails(code: number, message: string, detail: ErrorDetail): Uint8Array {
  return Status.encode({
    code,
    message,
    details: [{ typeUrl: ERROR_DETAIL_TYPE_URL, value: ErrorDetail.encode(detail).finish() }],
  }).finish();
}

/** Decodes a `grpc-status-details-bin` value; `detail` is the first ErrorDetail it holds, if any. */
export function decodeStatusDetails(bytes: Uint8Array): { status: Status; detail: ErrorDetail | undefined } {
  const status = Status.decode(bytes);
  const packed = status.details.find((d) => d.typeUrl === ERROR_DETAIL_TYPE_URL);
  return { status, detail: packed ? ErrorDetail.decode(packed.value) : undefined };
}

/**
 * Trailers of a call: grpc-js's `Metadata` (`get` returns every value) or nice-grpc's (`get`
 * returns the first).
 */
export interface TrailersLike {
  get(key: string): unknown;
}

/**
 * The ErrorDetail of a failed call, read from its trailers: grpc-js's `ServiceError.metadata`,
 * or what nice-grpc's `onTrailer` call option received.
 */
export function errorDetailFromMetadata(metadata: TrailersLike | undefined): ErrorDetail | undefined {
  const raw = metadata?.get(STATUS_DETAILS_KEY);
  const value: unknown = Array.isArray(raw) ? raw[0] : raw;
  if (!(value instanceof Uint8Array)) return undefined;
  return decodeStatusDetails(value).detail;
}
