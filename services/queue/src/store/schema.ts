import { bytea, int8 } from "@phoenix/runtime/db";
import { sql } from "drizzle-orm";
import { boolean, index, integer, pgTable, primaryKey, text, timestamp } from "drizzle-orm/pg-core";

/**
 * The QS's tables. Every identifier is a random pseudonym issued by the QS; every secret is
 * encrypted at rest under the storage key (domain/storage-keys.ts), each ciphertext bound to its
 * row by AAD. Nothing here names a DS-visible identifier next to a queue: fan-out ids and group
 * ids only appear as keyed hashes.
 */

/** The QS's own key pairs (queue-config HPKE keys and signing keys), private halves wrapped. */
export const qsKeys = pgTable("qs_keys", {
  keyId: bytea("key_id").primaryKey(),
  /** "queue_config" | "signing". */
  kind: text("kind").notNull(),
  publicKey: bytea("public_key").notNull(),
  wrappedPrivateKey: bytea("wrapped_private_key").notNull(),
  notBefore: timestamp("not_before", { withTimezone: true }).notNull(),
  /** Set when the key is rotated out: configs sealed to it are refused after this time. */
  notAfter: timestamp("not_after", { withTimezone: true }),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
});

/** Pseudonymous QS user records. */
export const qsUsers = pgTable("qs_users", {
  userId: bytea("user_id").primaryKey(),
  authKey: bytea("auth_key").notNull(),
  /** Keyed hash of the friendship token: the AddPackage fetch lookup. */
  friendshipTokenHash: bytea("friendship_token_hash").notNull().unique(),
  /** The token itself, encrypted at rest (GetUser returns it). */
  encryptedFriendshipToken: bytea("encrypted_friendship_token").notNull(),
  // No creation time: the protocol needs none, and an exact one lets a snapshot of the AS and
  // QS databases pair this pseudonymous record with the AS user registered at the same moment.
});

/** Pseudonymous QS client records, each with one queue. */
export const qsClients = pgTable(
  "qs_clients",
  {
    clientId: bytea("client_id").primaryKey(),
    userId: bytea("user_id")
      .notNull()
      .references(() => qsUsers.userId, { onDelete: "cascade" }),
    authKey: bytea("auth_key").notNull(),
    queueKey: bytea("queue_key").notNull(),
    /** The QS side of the queue ratchet (QueueRatchetSender), encrypted at rest. */
    encryptedRatchet: bytea("encrypted_ratchet").notNull(),
    /** The sequence number the next message gets (mirrors the ratchet, readable without it). */
    nextSeq: int8("next_seq").notNull().default(sql`0`),
    /**
     * When the queue ratchet key was last updated, floored to a coarse step (domain/queue-ratchet.ts
     * `keyUpdateStamp`: 1/24 of the update interval, at most an hour) — exact times would date the
     * record's creation and its traffic.
     */
    lastKeyUpdateAt: timestamp("last_key_update_at", { withTimezone: true }).notNull(),
    /** The queue key changed: the next message is a key update. */
    keyUpdateDue: boolean("key_update_due").notNull().default(false),
    /** The opened push token, encrypted at rest; null: none. */
    encryptedPushToken: bytea("encrypted_push_token"),
    /**
     * A Listen stream holds the queue until this time (a lease, refreshed while it lives, so a
     * crashed replica cannot suppress push notifications for good). Rounded up to whole minutes:
     * the lease needs no finer time, and a snapshot then dates a client's presence only to the
     * minute.
     */
    listenerUntil: timestamp("listener_until", { withTimezone: true }),
    /** Messages stored in the queue (kept with every insert and delete: the depth cap's count). */
    queueDepth: integer("queue_depth").notNull().default(0),
    /**
     * Messages were dropped since the last stored one because the queue was full. The first drop
     * of a run consumed one sequence number (the owner sees a gap there); later ones do not, so
     * a flood cannot open a gap wider than the queue ratchet's receiver skips.
     */
    gapOpen: boolean("gap_open").notNull().default(false),
    /** Month of the last request (coarse on purpose). */
    lastActiveAt: timestamp("last_active_at", { withTimezone: true }).notNull(),
  },
  (t) => [index("qs_clients_user_idx").on(t.userId), index("qs_clients_active_idx").on(t.lastActiveAt)],
);

/**
 * Client record auth keys replaced by UpdateClient, kept until `validUntil` to verify queue
 * configs sealed (and held by DS groups and KeyPackages) before the change — never requests.
 */
export const qsPreviousAuthKeys = pgTable(
  "qs_previous_auth_keys",
  {
    clientId: bytea("client_id")
      .notNull()
      .references(() => qsClients.clientId, { onDelete: "cascade" }),
    authKey: bytea("auth_key").notNull(),
    validUntil: timestamp("valid_until", { withTimezone: true }).notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.clientId, t.authKey] }),
    index("qs_previous_auth_keys_until_idx").on(t.validUntil),
  ],
);

/** Queued messages: queue-ratchet ciphertexts by sequence number. */
export const qsMessages = pgTable(
  "qs_messages",
  {
    clientId: bytea("client_id")
      .notNull()
      .references(() => qsClients.clientId, { onDelete: "cascade" }),
    seq: int8("seq").notNull(),
    /** libs/crypto encoded QueueMessage (already end-to-end encrypted to the queue owner). */
    message: bytea("message").notNull(),
    /**
     * When the expiry job deletes the message (rounded up to a coarse step, a day by default);
     * null: kept until acked — the Init and key update messages, whose loss would leave the
     * owner unable to read the queue on.
     */
    expiresAt: timestamp("expires_at", { withTimezone: true }),
  },
  (t) => [primaryKey({ columns: [t.clientId, t.seq] }), index("qs_messages_expires_idx").on(t.expiresAt)],
);

/** Fan-outs already handled (keyed hash of the fan-out id), for idempotent redelivery. */
export const qsHandledFanOuts = pgTable(
  "qs_handled_fan_outs",
  {
    marker: bytea("marker").primaryKey(),
    /** Floored to the hour: only the retention sweep reads it. */
    handledAt: timestamp("handled_at", { withTimezone: true }).notNull(),
  },
  (t) => [index("qs_handled_fan_outs_at_idx").on(t.handledAt)],
);

/** Per-queue blocklist of groups (keyed hash of queue and group). */
export const qsBlocklist = pgTable(
  "qs_blocklist",
  {
    clientId: bytea("client_id")
      .notNull()
      .references(() => qsClients.clientId, { onDelete: "cascade" }),
    entry: bytea("entry").notNull(),
  },
  (t) => [primaryKey({ columns: [t.clientId, t.entry] })],
);

/** Published AddPackages, encrypted at rest. */
export const qsAddPackages = pgTable(
  "qs_add_packages",
  {
    id: integer("id").primaryKey().generatedAlwaysAsIdentity(),
    clientId: bytea("client_id")
      .notNull()
      .references(() => qsClients.clientId, { onDelete: "cascade" }),
    lastResort: boolean("last_resort").notNull(),
    encryptedAddPackage: bytea("encrypted_add_package").notNull(),
    /**
     * Not handed out from this time on, and deleted by the sweep: the KeyPackage's notAfter or
     * QS_ADD_PACKAGE_LIFETIME after publication, whichever is first, floored to the hour. Null
     * only in rows published before the column existed, until the QS fills it in at start.
     */
    expiresAt: timestamp("expires_at", { withTimezone: true }),
  },
  (t) => [
    index("qs_add_packages_client_idx").on(t.clientId, t.lastResort),
    index("qs_add_packages_expires_idx").on(t.expiresAt),
  ],
);

// The admin audit log (QueueAdminService calls): the runtime's table, which every service with an
// admin listener keeps alike.
export { adminAudit } from "@phoenix/runtime/db";
