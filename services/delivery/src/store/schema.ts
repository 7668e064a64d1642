import { bytea } from "@phoenix/runtime/db";
import { sql } from "drizzle-orm";
import { integer, pgTable, timestamp } from "drizzle-orm/pg-core";

/**
 * One row per group. Everything that says who is in the group lives inside `state`, encrypted
 * under the group-state EAR key that only members hold (padded to size buckets). In plaintext:
 * the group id (the uuid part; the domain is this homeserver's), the month of last activity
 * (for deleting inactive groups), the group's queue-report public key and the sealed reports
 * of deleted queues the QS sent since the last write.
 */
export const groups = pgTable("groups", {
  /** The 16 uuid bytes of the group id. */
  groupId: bytea("group_id").primaryKey(),
  /** encryptAtRest(EAR key, "GroupState", encoded DsGroupState), aad = group id. */
  state: bytea("state").notNull(),
  /**
   * 16 random bytes drawn anew by every write of `state` (never a counter, so a deleted and
   * re-created group or another replica's write never repeats one): what the in-memory state
   * cache checks, in the same locked read, before it skips reading and decrypting `state`.
   * Empty for rows written before the column existed (never cached until their next write).
   */
  stateTag: bytea("state_tag").notNull().default(sql`'\\x'::bytea`),
  /** year * 12 + (month - 1) of the last commit: coarse on purpose. */
  lastActiveMonth: integer("last_active_month").notNull(),
  /**
   * X25519 public key the queue-deleted consumer seals reports to (it has no EAR key); the
   * private key sits inside `state`.
   */
  queueReportKey: bytea("queue_report_key").notNull(),
  /**
   * Queue-deleted reports since the last write (domain/queue-reports.ts): u32-length-prefixed
   * records of a dedupe tag, an expiry day and the HPKE ciphertext of the reported QsReference.
   * Deduplicated, capped (DS_MAX_QUEUE_REPORTS) and dropped after DS_QUEUE_REPORT_TTL.
   */
  queueReports: bytea("queue_reports").notNull(),
});

/** Group ids handed out by RequestGroupId and not (yet) used by CreateGroup. */
export const groupReservations = pgTable("group_reservations", {
  groupId: bytea("group_id").primaryKey(),
  expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }).notNull(),
});

export const deliverySchema = { groups, groupReservations };
