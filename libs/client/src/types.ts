import type { Transport } from "./transport.js";

/** Options shared by {@link PhoenixClient.register} and {@link PhoenixClient.open}. */
export interface PhoenixClientOptions {
  transport: Transport;
  /** SQLite file of this client (`:memory:` for a throw-away client). */
  storePath: string;
}

/** A conversation as the app shows it. */
export interface Conversation {
  id: string;
  kind: "group" | "connection";
  title: string;
  status: "active" | "inactive";
  /** User ids of the current members, this user included. */
  members: string[];
  unread: number;
  /** When this client last refreshed its keys in the conversation (or joined it). */
  keysUpdatedAt: Date;
}

/** A user as the app shows them: the display name from their profile, when one could be read. */
export interface Person {
  userId: string;
  /** Undefined while no profile of the user is available (show the user id, and say so). */
  displayName: string | undefined;
  /** This client's own user. */
  self: boolean;
}

/**
 * What a system message reports: members added, removed, leaving or joining (a connection's
 * peer), the conversation deleted, or a member's display name changed.
 */
export type ConversationEventType = "added" | "removed" | "left" | "joined" | "deleted" | "renamed";

/** A system message's event, stored by user id (see StoredEvent), shown with names. */
export interface ConversationEvent {
  type: ConversationEventType;
  /** Who did it (the committer); undefined when unknown. */
  actor: Person | undefined;
  /** Whom it concerns (added, removed, left, joined, renamed). */
  users: Person[];
  /** "renamed": the name before, when it was known. */
  previousName?: string;
}

/** A message or a system event of a conversation. */
export interface Message {
  id: number;
  kind: "text" | "system";
  /** Sender's user id (text messages; the actor of system messages). */
  sender: string | undefined;
  /** The sender as a person (with its display name where known). */
  senderPerson: Person | undefined;
  /** Text messages: the text. System messages: the event as a sentence, with names. */
  body: string;
  /** System messages (new ones): the event itself, for apps that render it their own way. */
  event: ConversationEvent | undefined;
  sentAt: Date;
  read: boolean;
}

/** A connected user. */
export interface Contact {
  userId: string;
  displayName: string | undefined;
  /** The connection conversation with this user. */
  conversationId: string;
}

/** A connection request. */
export interface ConnectionRequest {
  id: number;
  direction: "incoming" | "outgoing";
  /** The other user's id (outgoing by handle: the handle). */
  userId: string;
  /** The other user's display name, read from the profile the request carried (incoming). */
  displayName: string | undefined;
  /** Outgoing "rejected": the other user declined (signalled through the connection group). */
  status: "pending" | "accepted" | "rejected";
}

/** What one {@link PhoenixClient.sync} did. */
export interface SyncResult {
  /** Queue messages processed (AS connection queue + QS queue). */
  processed: number;
  /** Messages that could not be processed (skipped; see `errors`). */
  errors: string[];
}
