export {
  type MethodDefinitionLike,
  type RequestOf,
  type ResponseOf,
  ServiceDefinitionError,
  type ServiceDefinitionLike,
  serviceNameOf,
  splitPath,
} from "./definitions.js";
export {
  type CreateGrpcServerOptions,
  createGrpcServer,
  GrpcServer,
  type GrpcServerConfig,
  type HealthStatus,
  type ShutdownOptions,
  type ShutdownResult,
  startGrpcServer,
} from "./grpc-server.js";
export {
  type AnyRpc,
  type BidiStreamingHandler,
  type BidiStreamingRpc,
  bidiStreaming,
  type CallContext,
  type ClientStreamingHandler,
  type ClientStreamingRpc,
  clientStreaming,
  defineService,
  type ResponseStream,
  type RpcFor,
  type RpcOptions,
  type ServerStreamingHandler,
  type ServerStreamingRpc,
  type ServiceHandlers,
  type ServiceRegistration,
  serverStreaming,
  type UnaryHandler,
  type UnaryRpc,
  unary,
} from "./handlers.js";
export type { ReflectionSource } from "./reflection.js";
export { REQUEST_ID_KEY } from "./request-id.js";
export {
  type BidiCall,
  type ClientCallOptions,
  type ClientMethodFor,
  type CreateChannelOptions,
  createChannel,
  createServiceClient,
  GrpcCallError,
  type ServiceClient,
  type ServiceClientOptions,
} from "./service-client.js";
