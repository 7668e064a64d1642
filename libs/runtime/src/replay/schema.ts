import { index, timestamp } from "drizzle-orm/pg-core";
import { bytea } from "../db/columns.js";
import { runtimeSchema } from "../outbox/schema.js";

/**
 * Request ids a service has accepted, until their signed timestamp leaves the replay window.
 * Rows hold a keyed hash (`marker`) of the sender and the request id, never the ids themselves,
 * so a database snapshot names no sender. Written in the request's own transaction.
 */
export const seenRequests = runtimeSchema.table(
  "seen_requests",
  {
    marker: bytea("marker").primaryKey(),
    expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }).notNull(),
  },
  (t) => [index("seen_requests_expires_idx").on(t.expiresAt)],
);
