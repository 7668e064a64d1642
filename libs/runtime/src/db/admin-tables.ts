// The admin tables every service with an admin listener keeps in its own database (the AS, the
// federation gateway, the QS): the audit log and the settings an operator changed at runtime.
// One definition, so every service's rows read alike; a service's schema re-exports them.

import { eq, lt } from "drizzle-orm";
import { bigint, boolean, index, pgTable, text, timestamp } from "drizzle-orm/pg-core";
import type { Database } from "./types.js";

/**
 * The admin audit log: one row per admin call, accepted or refused — who (the operator name the
 * request gave), what (the method and its target identifiers as given), when, and the outcome.
 * Never message content or key material. Spread into a service's schema as `adminAudit`.
 */
export const adminAudit = pgTable(
  "admin_audit",
  {
    id: bigint("id", { mode: "bigint" }).primaryKey().generatedAlwaysAsIdentity(),
    at: timestamp("at", { withTimezone: true, mode: "date" }).notNull(),
    operator: text("operator").notNull(),
    /** False when the request was refused before its signature verified (the name is a claim). */
    authenticated: boolean("authenticated").notNull(),
    method: text("method").notNull(),
    target: text("target").notNull(),
    /** `ok`, or the gRPC status name of the refusal. */
    outcome: text("outcome").notNull(),
  },
  (t) => [index("admin_audit_at_idx").on(t.at)],
);

/** One admin audit row. */
export type AdminAuditRow = Omit<typeof adminAudit.$inferInsert, "id">;

/** Appends an audit row. */
export async function insertAdminAudit(db: Database, row: AdminAuditRow): Promise<void> {
  await db.insert(adminAudit).values(row);
}

/**
 * Deletes the audit rows older than `before` (ADMIN_AUDIT_RETENTION before now); returns how many.
 * Every service with an admin listener runs it from its periodic sweep.
 */
export async function deleteAdminAuditBefore(db: Database, before: Date): Promise<number> {
  const rows = await db.delete(adminAudit).where(lt(adminAudit.at, before)).returning({ id: adminAudit.id });
  return rows.length;
}

/**
 * Settings an operator changed at runtime through the admin API, winning over the configured
 * defaults (the AS's `registration`, the federation gateway's `federation_policy`).
 */
export const adminSettings = pgTable("admin_settings", {
  name: text("name").primaryKey(),
  value: text("value").notNull(),
});

/** A runtime setting, or undefined when never set. */
export async function getAdminSetting(db: Database, name: string): Promise<string | undefined> {
  const rows = await db
    .select({ value: adminSettings.value })
    .from(adminSettings)
    .where(eq(adminSettings.name, name))
    .limit(1);
  return rows[0]?.value;
}

/** Stores a runtime setting. */
export async function putAdminSetting(db: Database, name: string, value: string): Promise<void> {
  await db
    .insert(adminSettings)
    .values({ name, value })
    .onConflictDoUpdate({ target: adminSettings.name, set: { value } });
}
