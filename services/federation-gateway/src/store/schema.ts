import { bytea, int8 } from "@phoenix/runtime/db";
import { sql } from "drizzle-orm";
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

/**
 * What the gateway saw of each peer domain, for the admin API's ListPeers: last successful
 * contact each way (UTC minute) and refusals counted. Replicas add up what they saw in memory and
 * write it at most once a minute per peer (store/peer-stats.ts); rows of peers not seen for
 * PEER_STATS_RETENTION are pruned.
 */
export const peerStats = pgTable("fed_peer_stats", {
  domain: text("domain").primaryKey(),
  lastInboundAt: timestamp("last_inbound_at", { withTimezone: true }),
  lastOutboundAt: timestamp("last_outbound_at", { withTimezone: true }),
  /** Any event of the peer, refusals included (UTC minute): what pruning goes by. */
  lastSeenAt: timestamp("last_seen_at", { withTimezone: true }).notNull(),
  inboundPolicyRefusals: int8("inbound_policy_refusals").notNull().default(sql`0`),
  inboundSignatureRefusals: int8("inbound_signature_refusals").notNull().default(sql`0`),
  outboundFailures: int8("outbound_failures").notNull().default(sql`0`),
});

// The admin audit log and the operator's runtime settings (`federation_policy`): the runtime's
// tables, which every service with an admin listener keeps alike.
export { adminAudit, adminSettings } from "@phoenix/runtime/db";
