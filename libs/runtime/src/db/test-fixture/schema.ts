// A tiny service schema used by this package's own tests (migrations in ./migrations).
import { sql } from "drizzle-orm";
import { integer, pgTable, serial, text } from "drizzle-orm/pg-core";
import { bytea, int8 } from "../columns.js";

/** Stands in for a DS group: producers lock the row, bump the epoch and write outbox rows. */
export const groups = pgTable("groups", {
  id: text("id").primaryKey(),
  epoch: int8("epoch").notNull().default(sql`0`),
});

export const blobs = pgTable("blobs", {
  id: serial("id").primaryKey(),
  data: bytea("data").notNull(),
  big: int8("big"),
  note: text("note"),
  size: integer("size"),
});
