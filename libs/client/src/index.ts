export {
  ConversationInactiveError,
  FederationRefusedError,
  NotAContactError,
  NotRegisteredError,
  PhoenixClientError,
  UnknownConversationError,
  UnknownRequestError,
  UnknownUserError,
} from "./errors.js";
export { describeEvent, plainLabel } from "./events.js";
export { DEFAULT_KEY_UPDATE_MAX_AGE_MS, type KeyUpdateResult } from "./flows/key-updates.js";
export type { Listener, ListenOptions } from "./listener.js";
export { PhoenixClient } from "./phoenix-client.js";
export { createRestTransport, type RestTransportOptions } from "./rest-transport.js";
export { createGrpcTransport, type GrpcAddresses, type Transport } from "./transport.js";
export type {
  ConnectionRequest,
  Contact,
  Conversation,
  ConversationEvent,
  ConversationEventType,
  Message,
  Person,
  PhoenixClientOptions,
  SyncResult,
} from "./types.js";
