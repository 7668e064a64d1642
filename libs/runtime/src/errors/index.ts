export { PassthroughStatusError } from "./passthrough.js";
export {
  ERROR_DETAIL_TYPE,
  errorDetail,
  malformedField,
  queueFull,
  unauthenticatedFor,
} from "./phoenix-detail.js";
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
  type StatusDetail,
  statusDetail,
  UnauthenticatedError,
  UnavailableError,
  UnimplementedError,
} from "./rpc-errors.js";
export { decodeRichStatus, encodeRichStatus, type RichStatus, STATUS_DETAILS_KEY } from "./status-details.js";
export { INTERNAL_ERROR_MESSAGE, type RpcStatus, statusName, toGrpcStatus } from "./to-grpc-status.js";
