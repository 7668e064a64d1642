// The client-side half (rich status, status details, error detail packing) lives in
// @phoenix/wire; re-exported so servers keep one import path.
export {
  decodeRichStatus,
  ERROR_DETAIL_TYPE,
  encodeRichStatus,
  errorDetail,
  type RichStatus,
  STATUS_DETAILS_KEY,
  type StatusDetail,
  statusDetail,
  statusName,
} from "@phoenix/wire";
export { PassthroughStatusError } from "./passthrough.js";
export { malformedField, queueFull, unauthenticatedFor } from "./phoenix-detail.js";
export {
  AlreadyExistsError,
  CancelledError,
  DeadlineExceededError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  RpcError,
  type RpcErrorOptions,
  UnauthenticatedError,
  UnavailableError,
  UnimplementedError,
} from "./rpc-errors.js";
export { INTERNAL_ERROR_MESSAGE, type RpcStatus, toGrpcStatus } from "./to-grpc-status.js";
