import { bytea, int8 } from "@phoenix/runtime/db";
import { sql } from "drizzle-orm";
import {
  bigint,
  boolean,
  check,
  foreignKey,
  index,
  integer,
  pgTable,
  primaryKey,
  text,
  timestamp,
  unique,
} from "drizzle-orm/pg-core";

// The AS database. It is the only place that links user ids to clients; handles are stored only
// as their hash and are deliberately not linked to users. Everything owned by a user hangs off
// `users` with ON DELETE CASCADE, so deleting a user is one statement in one transaction.

function at(name: string) {
  return timestamp(name, { withTimezone: true, mode: "date" });
}

/**
 * AS root and intermediate credentials. `signing_key` is the Ed25519 seed of a key this AS holds;
 * it is null for a root whose key was given in the configuration (it never enters the database).
 * With AS_KEY_ENCRYPTION_KEY set, `signing_key` is that seed encrypted at rest and
 * `signing_key_kek_id` names the key-encryption key; null there means a plaintext seed.
 */
export const asCredentials = pgTable(
  "as_credentials",
  {
    fingerprint: bytea("fingerprint").primaryKey(),
    kind: text("kind", { enum: ["root", "intermediate"] }).notNull(),
    credential: bytea("credential").notNull(),
    signingKey: bytea("signing_key"),
    signingKeyKekId: bytea("signing_key_kek_id"),
    notBefore: at("not_before").notNull(),
    notAfter: at("not_after").notNull(),
    createdAt: at("created_at").notNull(),
  },
  (t) => [index("as_credentials_kind_created_idx").on(t.kind, t.createdAt)],
);

/** Fingerprints of revoked credentials (AS credentials or client credentials), served publicly; `revoked_at` is the UTC month. */
export const revokedCredentials = pgTable("revoked_credentials", {
  fingerprint: bytea("fingerprint").primaryKey(),
  revokedAt: at("revoked_at").notNull(),
});

/**
 * Users of this domain, by the 16 uuid bytes of their UserId. No creation time: joined with the
 * QS's records on time, it would link the user to its QS pseudonym (see domain/coarse-time.ts for
 * the precision of every time the AS keeps).
 */
export const users = pgTable("users", {
  userUuid: bytea("user_uuid").primaryKey(),
});

/**
 * Encrypted user profiles: the `current` one and, during a profile key rotation, a `staged` one,
 * each with the profile key index readers use to ask for it.
 */
export const userProfiles = pgTable(
  "user_profiles",
  {
    userUuid: bytea("user_uuid")
      .notNull()
      .references(() => users.userUuid, { onDelete: "cascade" }),
    slot: text("slot", { enum: ["current", "staged"] }).notNull(),
    keyIndex: bytea("key_index").notNull(),
    profile: bytea("profile").notNull(),
  },
  (t) => [primaryKey({ columns: [t.userUuid, t.slot] })],
);

/** Clients of users with their current client credential. */
export const clients = pgTable(
  "clients",
  {
    userUuid: bytea("user_uuid")
      .notNull()
      .references(() => users.userUuid, { onDelete: "cascade" }),
    clientUuid: bytea("client_uuid").notNull(),
    credential: bytea("credential").notNull(),
    /** The credential's raw Ed25519 key, so request verification needs no credential decoding. */
    signatureKey: bytea("signature_key").notNull(),
    /** The credential's notAfter rounded down to the UTC hour. */
    credentialNotAfter: at("credential_not_after").notNull(),
    /** The UTC month the client was registered (ListClients reports it). */
    createdAt: at("created_at").notNull(),
    /** Last authenticated request, truncated to the month (activity is kept coarse on purpose). */
    lastActiveAt: at("last_active_at").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.userUuid, t.clientUuid] }),
    index("clients_last_active_idx").on(t.lastActiveAt),
  ],
);

/** Handles by the hash of their plaintext; the plaintext is never stored. */
export const handles = pgTable(
  "handles",
  {
    handleHash: bytea("handle_hash").primaryKey(),
    verifyingKey: bytea("verifying_key").notNull(),
    /** Rounded up to the UTC hour. */
    expiresAt: at("expires_at").notNull(),
  },
  (t) => [index("handles_expires_idx").on(t.expiresAt)],
);

/**
 * Connection queues: one per client and one per handle. The queue ratchet state is the server
 * half of the queue ratchet (current ratchet secret, messages until the next key update); with
 * it a snapshot reveals nothing about messages already enqueued (forward secrecy).
 */
export const connectionQueues = pgTable(
  "connection_queues",
  {
    queueId: bytea("queue_id").primaryKey(),
    userUuid: bytea("user_uuid"),
    clientUuid: bytea("client_uuid"),
    handleHash: bytea("handle_hash").references(() => handles.handleHash, { onDelete: "cascade" }),
    encryptionKey: bytea("encryption_key").notNull(),
    ratchetState: bytea("ratchet_state").notNull(),
    /** Sequence number the next enqueued message gets. */
    nextSequence: int8("next_sequence").notNull(),
  },
  (t) => [
    foreignKey({
      columns: [t.userUuid, t.clientUuid],
      foreignColumns: [clients.userUuid, clients.clientUuid],
    }).onDelete("cascade"),
    unique("connection_queues_client_key").on(t.userUuid, t.clientUuid),
    unique("connection_queues_handle_key").on(t.handleHash),
    check(
      "connection_queues_one_owner",
      sql`(${t.handleHash} IS NULL) <> (${t.userUuid} IS NULL AND ${t.clientUuid} IS NULL)`,
    ),
  ],
);

/**
 * Queued connection offers, each a queue-ratchet ciphertext (never plaintext). An offer expires
 * at `expires_at` (a whole UTC day, AS_QUEUE_MESSAGE_TTL after its enqueue); the queue ratchet's
 * own messages (the Init message, key updates) have none: without them the owner could read
 * nothing that follows, so they stay until the owner acknowledges past them.
 */
export const queueMessages = pgTable(
  "queue_messages",
  {
    queueId: bytea("queue_id")
      .notNull()
      .references(() => connectionQueues.queueId, { onDelete: "cascade" }),
    sequenceNumber: int8("sequence_number").notNull(),
    ciphertext: bytea("ciphertext").notNull(),
    expiresAt: at("expires_at"),
  },
  (t) => [
    primaryKey({ columns: [t.queueId, t.sequenceNumber] }),
    index("queue_messages_expires_idx").on(t.expiresAt),
  ],
);

/** Connection packages of clients and handles; `last_resort` ones are handed out, never consumed. */
export const connectionPackages = pgTable(
  "connection_packages",
  {
    id: bigint("id", { mode: "bigint" }).primaryKey().generatedAlwaysAsIdentity(),
    userUuid: bytea("user_uuid"),
    clientUuid: bytea("client_uuid"),
    handleHash: bytea("handle_hash").references(() => handles.handleHash, { onDelete: "cascade" }),
    package: bytea("package").notNull(),
    lastResort: boolean("last_resort").notNull(),
    /** The package's own notAfter or the AS's lifetime cap, whichever is first, rounded down to the UTC hour. */
    expiresAt: at("expires_at").notNull(),
  },
  (t) => [
    foreignKey({
      columns: [t.userUuid, t.clientUuid],
      foreignColumns: [clients.userUuid, clients.clientUuid],
    }).onDelete("cascade"),
    index("connection_packages_client_idx").on(t.userUuid, t.clientUuid),
    index("connection_packages_handle_idx").on(t.handleHash),
    index("connection_packages_expires_idx").on(t.expiresAt),
    check(
      "connection_packages_one_owner",
      sql`(${t.handleHash} IS NULL) <> (${t.userUuid} IS NULL AND ${t.clientUuid} IS NULL)`,
    ),
  ],
);

/**
 * Uses of invite codes (AS_INVITE_CODES), by SHA-256 of the code so a database copy does not
 * hand out the codes. A row is written by the registration that uses the code, in its transaction.
 */
export const inviteCodeUses = pgTable("invite_code_uses", {
  codeHash: bytea("code_hash").primaryKey(),
  uses: integer("uses").notNull(),
});

/**
 * Other domains' AS credentials (their GetAsCredentials answer, verified before it was stored),
 * served from here for AS_REMOTE_CREDENTIALS_TTL after `fetched_at`, and past it while the
 * domain cannot be reached. Public data: nothing here is secret.
 */
export const remoteAsCredentials = pgTable("remote_as_credentials", {
  domain: text("domain").primaryKey(),
  /** The encoded GetAsCredentialsResponse. */
  response: bytea("response").notNull(),
  fetchedAt: at("fetched_at").notNull(),
});

/**
 * Users suspended by an operator (admin SuspendUser): their clients' requests are refused. No
 * time is kept here (the audit log says when); the row goes with the user.
 */
export const userSuspensions = pgTable("user_suspensions", {
  userUuid: bytea("user_uuid")
    .primaryKey()
    .references(() => users.userUuid, { onDelete: "cascade" }),
});

// The admin audit log and the settings an operator changed at runtime (`registration`): the
// runtime's tables, which every service with an admin listener keeps alike.
export { adminAudit, adminSettings } from "@phoenix/runtime/db";

/**
 * Invite codes created through the admin API, and revocations of AS_INVITE_CODES entries, by
 * SHA-256 of the code (the code itself is shown once, to the operator who created it). Uses are
 * counted in `invite_code_uses` like those of configured codes.
 */
export const inviteCodes = pgTable("invite_codes", {
  codeHash: bytea("code_hash").primaryKey(),
  maxUses: integer("max_uses").notNull(),
  /** True for a revocation of an AS_INVITE_CODES entry (not a code of its own). */
  fromConfig: boolean("from_config").notNull(),
  revoked: boolean("revoked").notNull(),
});

/**
 * The AS's OPAQUE server setup (RFC 9807: OPRF seed and AKE key pair, the fake record's key pair
 * too), one row made on first start. Without it no registration record allows an offline password
 * guess, so it is key material: sealed under AS_KEY_ENCRYPTION_KEY like `as_credentials` keys,
 * `setup_kek_id` naming the key it is sealed under.
 */
export const opaqueServerSetup = pgTable(
  "opaque_server_setup",
  {
    id: integer("id").primaryKey(),
    setup: bytea("setup").notNull(),
    setupKekId: bytea("setup_kek_id").notNull(),
  },
  (t) => [check("opaque_server_setup_single_row", sql`${t.id} = 1`)],
);

/**
 * Account passwords: each user's OPAQUE registration record (client public key, masking key,
 * envelope), replaced when the password is. No time kept; goes with the user.
 */
export const passwordRecords = pgTable("password_records", {
  userUuid: bytea("user_uuid")
    .primaryKey()
    .references(() => users.userUuid, { onDelete: "cascade" }),
  record: bytea("record").notNull(),
});

/**
 * Password logins between StartPasswordLogin and FinishPasswordLogin. `state` (the user, the
 * record it was started against, the OPAQUE server login state) is sealed under a key derived from
 * AS_KEY_ENCRYPTION_KEY and bound to `login_id`: a database copy shows neither who is logging in
 * nor the MAC the login expects. Deleted by the first finish attempt or after `expires_at`.
 */
export const passwordLogins = pgTable(
  "password_logins",
  {
    loginId: bytea("login_id").primaryKey(),
    state: bytea("state").notNull(),
    stateKekId: bytea("state_kek_id").notNull(),
    expiresAt: at("expires_at").notNull(),
  },
  (t) => [index("password_logins_expires_idx").on(t.expiresAt)],
);

/**
 * Add-client grants of finished password logins, by SHA-256 of the token (the token itself is
 * only in the FinishPasswordLogin answer). `expires_at` is the exact expiry rounded up to the UTC
 * hour (for the expiry job); the exact one is `sealed_expiry`, sealed under a key derived from the
 * token (domain/add-client-grant.ts). Deleted when used, when the password changes, with the user,
 * or after `expires_at`.
 */
export const addClientGrants = pgTable(
  "add_client_grants",
  {
    grantHash: bytea("grant_hash").primaryKey(),
    userUuid: bytea("user_uuid")
      .notNull()
      .references(() => users.userUuid, { onDelete: "cascade" }),
    expiresAt: at("expires_at").notNull(),
    sealedExpiry: bytea("sealed_expiry").notNull(),
  },
  (t) => [
    index("add_client_grants_user_idx").on(t.userUuid),
    index("add_client_grants_expires_idx").on(t.expiresAt),
  ],
);
