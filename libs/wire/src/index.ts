export {
  type AnyServiceDefinition,
  type GeneratedMethodLike,
  type GeneratedServiceDefinitionLike,
  isGeneratedDefinition,
  type MethodDefinitionLike,
  type MethodsOf,
  type RequestOf,
  type ResponseOf,
  ServiceDefinitionError,
  type ServiceDefinitionLike,
  serviceNameOf,
  splitPath,
} from "./definitions.js";
export { ERROR_DETAIL_TYPE, errorDetail } from "./error-detail.js";
export {
  type ConnectionQueueOwner,
  connectionQueueContext,
  mlsGroupId,
  qualifiedGroupId,
} from "./ids.js";
export { REQUEST_ID_KEY } from "./request-id.js";
export {
  type BidiCall,
  type CallStatusLike,
  type ClientCallOptions,
  type ClientMethodFor,
  type CreateChannelOptions,
  channelOptionsOf,
  createChannel,
  createServiceClient,
  GrpcCallError,
  type ParentCall,
  type PhoenixCallOptions,
  phoenixCallMiddleware,
  RECONNECT_BACKOFF,
  type ServiceClient,
  type ServiceClientOptions,
} from "./service-client.js";
export {
  decodeRichStatus,
  encodeRichStatus,
  type RichStatus,
  STATUS_DETAILS_KEY,
  type StatusDetail,
  statusDetail,
  statusName,
} from "./status-details.js";
