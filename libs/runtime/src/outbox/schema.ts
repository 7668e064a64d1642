import { sql } from "drizzle-orm";
import { boolean, jsonb, pgSchema, text, timestamp } from "drizzle-orm/pg-core";
import { bytea, int8 } from "../db/columns.js";

/**
 * Tables owned by libs/runtime live in their own Postgres schema, created by the runtime's
 * migrations (applied by `openDatabase`), so a service's drizzle-kit never sees or drops them.
 */
export const runtimeSchema = pgSchema("phoenix_runtime");

/**
 * The transactional outbox: messages a service committed together with its own state and that
 * the relay has not yet published. Published rows are deleted.
 */
export const outbox = runtimeSchema.table("outbox", {
  /** Commit order for one producer key (the producer holds a row lock while it writes). */
  seq: int8("seq").primaryKey().generatedAlwaysAsIdentity(),
  /** The bus dedupe id: a re-publish after a crash carries the same id. */
  id: text("id").notNull(),
  subject: text("subject").notNull(),
  /** The message body; when `sealed`, body and headers sealed together (see `sealMessage`). */
  payload: bytea("payload").notNull(),
  /** Empty when `sealed` (the headers are inside the sealed payload). */
  headers: jsonb("headers").$type<Record<string, string>>().notNull().default(sql`'{}'::jsonb`),
  /** False only for rows written before outbox sealing existed: relayed as they are. */
  sealed: boolean("sealed").notNull().default(false),
  createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
});
