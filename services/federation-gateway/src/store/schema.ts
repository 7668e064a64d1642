import { bytea } from "@phoenix/runtime/db";
import { pgTable, primaryKey, text, timestamp } from "drizzle-orm/pg-core";

/** This domain's federation signing keys (Ed25519), newest `not_before` signs. */
export const ownKeys = pgTable("fed_own_keys", {
  keyId: bytea("key_id").primaryKey(),
  publicKey: bytea("public_key").notNull(),
  /**
   * The RFC 8032 seed sealed under FEDERATION_KEY_ENCRYPTION_KEY, bound to `key_id` (a database
   * copy alone yields no signing key); plaintext only in rows from before encryption, which
   * the gateway seals at start.
   */
  seed: bytea("seed").notNull(),
  /** Id of the key-encryption key that sealed `seed`; null: `seed` is a plaintext seed. */
  seedKekId: bytea("seed_kek_id"),
  notBefore: timestamp("not_before", { withTimezone: true }).notNull(),
  notAfter: timestamp("not_after", { withTimezone: true }).notNull(),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
});

/** Peer domains' verifying keys as last fetched with GetDomainKeys (a cache with expiry). */
export const peerKeys = pgTable(
  "fed_peer_keys",
  {
    domain: text("domain").notNull(),
    keyId: bytea("key_id").notNull(),
    publicKey: bytea("public_key").notNull(),
    notBefore: timestamp("not_before", { withTimezone: true }).notNull(),
    notAfter: timestamp("not_after", { withTimezone: true }).notNull(),
    /** When this key list was fetched; the whole list of a domain is replaced on every fetch. */
    fetchedAt: timestamp("fetched_at", { withTimezone: true }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.domain, t.keyId] })],
);

/** Envelopes already handed to this domain's bus: a redelivered envelope is answered OK without effect. */
export const inboundEnvelopes = pgTable("fed_inbound_envelopes", {
  envelopeId: bytea("envelope_id").primaryKey(),
  receivedAt: timestamp("received_at", { withTimezone: true }).notNull().defaultNow(),
});

/** Peer domains that have (or had) an outbound lane: their consumers restart with the gateway. */
export const outboundPeers = pgTable("fed_outbound_peers", {
  domain: text("domain").primaryKey(),
  firstSeenAt: timestamp("first_seen_at", { withTimezone: true }).notNull().defaultNow(),
});
