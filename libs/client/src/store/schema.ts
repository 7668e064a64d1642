// The client's SQLite schema (drizzle). Secrets (keys, MLS group states, queue ratchets) are stored
// as they are: the database file is the device's key store and must be protected like one.
import { blob, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

const bytes = (name: string) => blob(name, { mode: "buffer" });

/** Small named values: the account's keys and ids, queue ratchets and sequence numbers. */
export const kv = sqliteTable("kv", {
  key: text("key").primaryKey(),
  value: bytes("value").notNull(),
});

/** Private halves of published connection packages, by package hash (hex). */
export const connectionPackageKeys = sqliteTable("connection_package_keys", {
  hash: text("hash").primaryKey(),
  decryptionKey: bytes("decryption_key").notNull(),
});

/** Private halves of published AddPackages, by KeyPackageRef (hex). */
export const addPackageKeys = sqliteTable("add_package_keys", {
  ref: text("ref").primaryKey(),
  keyPackage: bytes("key_package").notNull(),
  privateKeyPackage: bytes("private_key_package").notNull(),
  leafSeed: bytes("leaf_seed").notNull(),
  leafCredential: bytes("leaf_credential").notNull(),
  signatureEncryptionKey: bytes("signature_encryption_key").notNull(),
  lastResort: integer("last_resort", { mode: "boolean" }).notNull(),
});

/** Conversations: MLS groups this client is (or was) a member of. */
export const conversations = sqliteTable("conversations", {
  /** Hex of the MLS group id (16 uuid bytes ‖ domain). */
  id: text("id").primaryKey(),
  groupUuid: bytes("group_uuid").notNull(),
  groupDomain: text("group_domain").notNull(),
  kind: text("kind", { enum: ["group", "connection"] }).notNull(),
  title: text("title").notNull(),
  status: text("status", { enum: ["active", "inactive"] }).notNull(),
  earKey: bytes("ear_key").notNull(),
  credentialKey: bytes("credential_key").notNull(),
  profileKeyKey: bytes("profile_key_key").notNull(),
  mlsState: bytes("mls_state"),
  leafSeed: bytes("leaf_seed").notNull(),
  leafCredential: bytes("leaf_credential").notNull(),
  signatureEncryptionKey: bytes("signature_encryption_key").notNull(),
  /** Connection conversations: the other user. */
  peerUserId: text("peer_user_id"),
  createdAt: integer("created_at").notNull(),
});

/** Who sits on which leaf of a conversation (learned from client infos). */
export const members = sqliteTable(
  "members",
  {
    conversationId: text("conversation_id").notNull(),
    leafIndex: integer("leaf_index").notNull(),
    userId: text("user_id").notNull(),
  },
  (t) => [primaryKey({ columns: [t.conversationId, t.leafIndex] })],
);

/**
 * Members whose leaf a commit removed (or gave to someone else), by their leaf credential: kept
 * while an epoch ts-mls still holds receiver keys for has them in its tree, so a message of that
 * epoch that arrives after the commit still names its sender.
 */
export const formerMembers = sqliteTable(
  "former_members",
  {
    conversationId: text("conversation_id").notNull(),
    /** The leaf's MLS Basic identity (the Phoenix leaf credential, unique per leaf). */
    leafCredential: bytes("leaf_credential").notNull(),
    userId: text("user_id").notNull(),
  },
  (t) => [primaryKey({ columns: [t.conversationId, t.leafCredential] })],
);

/** Messages (text and system events) in arrival order. */
export const messages = sqliteTable("messages", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  conversationId: text("conversation_id").notNull(),
  kind: text("kind", { enum: ["text", "system"] }).notNull(),
  senderUserId: text("sender_user_id"),
  body: text("body").notNull(),
  /** System messages: the event as JSON (see ConversationEvent), rendered with names when read. */
  event: text("event"),
  sentAt: integer("sent_at").notNull(),
  /** Own messages are read; others start unread. */
  read: integer("read", { mode: "boolean" }).notNull(),
});

/** Connected users: their friendship keys and profile. */
export const contacts = sqliteTable("contacts", {
  userId: text("user_id").primaryKey(),
  friendshipPackage: bytes("friendship_package").notNull(),
  displayName: text("display_name"),
  conversationId: text("conversation_id").notNull(),
});

/**
 * Profiles of users met in groups and connection requests (contacts included): the user profile
 * key they shared (in a group, encrypted under its profile-key key; in a connection offer, in the
 * friendship package) and the display name read with it from the AS.
 */
export const profiles = sqliteTable("profiles", {
  userId: text("user_id").primaryKey(),
  profileKey: bytes("profile_key").notNull(),
  /** Null until the profile was fetched (or when it could not be read). */
  displayName: text("display_name"),
  fetchedAt: integer("fetched_at"),
});

/** Connection requests: outgoing (waiting for the peer) and incoming (waiting for a decision). */
export const connectionRequests = sqliteTable("connection_requests", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  direction: text("direction", { enum: ["incoming", "outgoing"] }).notNull(),
  userId: text("user_id").notNull(),
  conversationId: text("conversation_id").notNull(),
  /** Incoming: the verified offer's content (see connections.ts). */
  offer: bytes("offer"),
  status: text("status", { enum: ["pending", "accepted", "rejected"] }).notNull(),
  createdAt: integer("created_at").notNull(),
});

/** DDL applied when the store is opened (idempotent). */
export const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS connection_package_keys (hash TEXT PRIMARY KEY, decryption_key BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS add_package_keys (ref TEXT PRIMARY KEY, key_package BLOB NOT NULL,
  private_key_package BLOB NOT NULL, leaf_seed BLOB NOT NULL, leaf_credential BLOB NOT NULL,
  signature_encryption_key BLOB NOT NULL, last_resort INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS conversations (id TEXT PRIMARY KEY, group_uuid BLOB NOT NULL,
  group_domain TEXT NOT NULL, kind TEXT NOT NULL, title TEXT NOT NULL, status TEXT NOT NULL,
  ear_key BLOB NOT NULL, credential_key BLOB NOT NULL, profile_key_key BLOB NOT NULL, mls_state BLOB,
  leaf_seed BLOB NOT NULL, leaf_credential BLOB NOT NULL, signature_encryption_key BLOB NOT NULL,
  peer_user_id TEXT, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS members (conversation_id TEXT NOT NULL, leaf_index INTEGER NOT NULL,
  user_id TEXT NOT NULL, PRIMARY KEY (conversation_id, leaf_index));
CREATE TABLE IF NOT EXISTS former_members (conversation_id TEXT NOT NULL, leaf_credential BLOB NOT NULL,
  user_id TEXT NOT NULL, PRIMARY KEY (conversation_id, leaf_credential));
CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id TEXT NOT NULL,
  kind TEXT NOT NULL, sender_user_id TEXT, body TEXT NOT NULL, event TEXT, sent_at INTEGER NOT NULL,
  read INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages (conversation_id, id);
CREATE TABLE IF NOT EXISTS contacts (user_id TEXT PRIMARY KEY, friendship_package BLOB NOT NULL,
  display_name TEXT, conversation_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS connection_requests (id INTEGER PRIMARY KEY AUTOINCREMENT, direction TEXT NOT NULL,
  user_id TEXT NOT NULL, conversation_id TEXT NOT NULL, offer BLOB, status TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS profiles (user_id TEXT PRIMARY KEY, profile_key BLOB NOT NULL, display_name TEXT,
  fetched_at INTEGER);
`;

/** Columns added after a table was first created: [table, column, definition]. */
export const ADDED_COLUMNS: readonly [string, string, string][] = [["messages", "event", "TEXT"]];
