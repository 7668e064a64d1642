/** Base class of the errors the client throws on purpose. */
export class PhoenixClientError extends Error {
  override name = "PhoenixClientError";
}

/** The user to connect to does not exist (or publishes no connection package). */
export class UnknownUserError extends PhoenixClientError {
  override name = "UnknownUserError";
}

/** The store holds no registered account. */
export class NotRegisteredError extends PhoenixClientError {
  override name = "NotRegisteredError";
}

/** No conversation with this id. */
export class UnknownConversationError extends PhoenixClientError {
  override name = "UnknownConversationError";
}

/** The conversation is no longer active (removed, left or deleted). */
export class ConversationInactiveError extends PhoenixClientError {
  override name = "ConversationInactiveError";
}

/** The user is not a contact (connect first). */
export class NotAContactError extends PhoenixClientError {
  override name = "NotAContactError";
}

/** No pending connection request with this id. */
export class UnknownRequestError extends PhoenixClientError {
  override name = "UnknownRequestError";
}

/**
 * The user's homeserver and another domain do not federate (either side's federation policy
 * refused: PERMISSION_DENIED); `cause` holds the status.
 */
export class FederationRefusedError extends PhoenixClientError {
  override name = "FederationRefusedError";
}
