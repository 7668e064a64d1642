import type { Database } from "@phoenix/runtime/db";
import { and, eq, gt, lt, sql } from "drizzle-orm";
import { groupReservations, groups } from "./schema.js";

/** A stored group row (all binary columns as Uint8Array). */
export type GroupRow = typeof groups.$inferSelect;

/** Month counter stored as last activity: coarse on purpose (year * 12 + month index, UTC). */
export function activityMonth(timeMs: number): number {
  const d = new Date(timeMs);
  return d.getUTCFullYear() * 12 + d.getUTCMonth();
}

/** Inserts a reservation; false when the id is taken (reserved or in use). */
export async function reserveGroupId(db: Database, groupId: Uint8Array, expiresAt: Date): Promise<boolean> {
  const existing = await db.select({ id: groups.groupId }).from(groups).where(eq(groups.groupId, groupId));
  if (existing.length > 0) return false;
  const inserted = await db
    .insert(groupReservations)
    .values({ groupId, expiresAt })
    .onConflictDoNothing()
    .returning({ id: groupReservations.groupId });
  return inserted.length > 0;
}

/** Consumes a live reservation inside the creating transaction; false when none (or expired). */
export async function takeReservation(tx: Database, groupId: Uint8Array, now: Date): Promise<boolean> {
  const taken = await tx
    .delete(groupReservations)
    .where(and(eq(groupReservations.groupId, groupId), gt(groupReservations.expiresAt, now)))
    .returning({ id: groupReservations.groupId });
  return taken.length > 0;
}

/** Whether a group row exists. */
export async function groupExists(tx: Database, groupId: Uint8Array): Promise<boolean> {
  const rows = await tx.select({ id: groups.groupId }).from(groups).where(eq(groups.groupId, groupId));
  return rows.length > 0;
}

export async function insertGroup(tx: Database, row: GroupRow): Promise<void> {
  await tx.insert(groups).values(row);
}

/** Reads a group row and locks it until the transaction ends (the one read of a write request). */
export async function lockGroup(tx: Database, groupId: Uint8Array): Promise<GroupRow | undefined> {
  const rows = await tx.select().from(groups).where(eq(groups.groupId, groupId)).for("update");
  return rows[0];
}

/** Reads a group row without locking (read-only requests). */
export async function readGroup(db: Database, groupId: Uint8Array): Promise<GroupRow | undefined> {
  const rows = await db.select().from(groups).where(eq(groups.groupId, groupId));
  return rows[0];
}

/**
 * Writes the new encrypted state (the one write of a request). The queue reports read under the
 * same row lock were folded into the state, so they are cleared.
 */
export async function updateGroup(
  tx: Database,
  groupId: Uint8Array,
  values: { state: Uint8Array; lastActiveMonth: number },
): Promise<void> {
  await tx
    .update(groups)
    .set({ state: values.state, lastActiveMonth: values.lastActiveMonth, queueReports: new Uint8Array(0) })
    .where(eq(groups.groupId, groupId));
}

export async function deleteGroupRow(tx: Database, groupId: Uint8Array): Promise<void> {
  await tx.delete(groups).where(eq(groups.groupId, groupId));
}

/** Appends one sealed queue-deleted report (u32 length prefix + ciphertext); false if no such group. */
export async function appendQueueReport(
  db: Database,
  groupId: Uint8Array,
  sealed: Uint8Array,
): Promise<boolean> {
  const record = new Uint8Array(4 + sealed.length);
  new DataView(record.buffer).setUint32(0, sealed.length);
  record.set(sealed, 4);
  const rows = await db
    .update(groups)
    .set({ queueReports: sql`${groups.queueReports} || ${record}` })
    .where(eq(groups.groupId, groupId))
    .returning({ id: groups.groupId });
  return rows.length > 0;
}

/** Splits the queue_reports column into its records. */
export function splitQueueReports(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  while (offset + 4 <= bytes.length) {
    const length = view.getUint32(offset);
    if (offset + 4 + length > bytes.length) break;
    out.push(bytes.slice(offset + 4, offset + 4 + length));
    offset += 4 + length;
  }
  return out;
}

/** Deletes groups whose last activity month is before `cutoffMonth`; returns how many. */
export async function deleteInactiveGroups(db: Database, cutoffMonth: number): Promise<number> {
  const rows = await db
    .delete(groups)
    .where(lt(groups.lastActiveMonth, cutoffMonth))
    .returning({ id: groups.groupId });
  return rows.length;
}

/** Deletes lapsed reservations; returns how many. */
export async function deleteExpiredReservations(db: Database, now: Date): Promise<number> {
  const rows = await db
    .delete(groupReservations)
    .where(lt(groupReservations.expiresAt, now))
    .returning({ id: groupReservations.groupId });
  return rows.length;
}
