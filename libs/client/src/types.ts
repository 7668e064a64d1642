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

/** A message or a system event of a conversation. */
export interface Message {
  id: number;
  kind: "text" | "system";
  /** Sender's user id (text messages). */
  sender: string | undefined;
  body: string;
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
  userId: string;
  status: "pending" | "accepted" | "rejected";
}

/** What one {@link PhoenixClient.sync} did. */
export interface SyncResult {
  /** Queue messages processed (AS connection queue + QS queue). */
  processed: number;
  /** Messages that could not be processed (skipped; see `errors`). */
  errors: string[];
}
