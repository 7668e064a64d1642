export {
  ConversationInactiveError,
  NotAContactError,
  NotRegisteredError,
  PhoenixClientError,
  UnknownConversationError,
  UnknownRequestError,
  UnknownUserError,
} from "./errors.js";
export {
  type ConnectionRequest,
  type Contact,
  type Conversation,
  type Message,
  PhoenixClient,
  type PhoenixClientOptions,
  type SyncResult,
} from "./phoenix-client.js";
export { createGrpcTransport, type GrpcAddresses, type Transport } from "./transport.js";
