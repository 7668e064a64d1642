import { type Database, transaction } from "@phoenix/runtime/db";
import type { ClaimedWrite } from "@phoenix/runtime/outbox";
import { and, eq, gt, lt, sql } from "drizzle-orm";
import {
  type AdmitOutcome,
  admitReport,
  decodeQueueReports,
  encodeQueueReports,
  isLive,
  type QueueReportRecord,
} from "../domain/queue-reports.js";
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

/**
 * A group row as a request reads it. `state` is undefined when the caller named the tag of a
 * state it holds decoded and the row still carries that tag (nothing to transfer or decrypt).
 */
export type LoadedRow = Omit<GroupRow, "state"> & { state: Uint8Array | undefined };

function loadedColumns(cachedTag: Uint8Array | undefined) {
  return {
    groupId: groups.groupId,
    stateTag: groups.stateTag,
    lastActiveMonth: groups.lastActiveMonth,
    queueReportKey: groups.queueReportKey,
    queueReports: groups.queueReports,
    state:
      cachedTag === undefined || cachedTag.length === 0
        ? groups.state
        : sql<Uint8Array | null>`CASE WHEN ${eq(groups.stateTag, cachedTag)} THEN NULL ELSE ${groups.state} END`.mapWith(
            groups.state,
          ),
  };
}

function loaded(row: { state: Uint8Array | null } & Omit<GroupRow, "state">): LoadedRow {
  return { ...row, state: row.state ?? undefined };
}

/**
 * Reads a group row and locks it until the transaction ends (the one read of a write request);
 * `cachedTag`: see {@link LoadedRow}.
 */
export async function lockGroup(
  tx: Database,
  groupId: Uint8Array,
  cachedTag?: Uint8Array,
): Promise<LoadedRow | undefined> {
  const rows = await tx
    .select(loadedColumns(cachedTag))
    .from(groups)
    .where(eq(groups.groupId, groupId))
    .for("update");
  return rows[0] === undefined ? undefined : loaded(rows[0]);
}

/** Reads a group row without locking (read-only requests); `cachedTag`: see {@link LoadedRow}. */
export async function readGroup(
  db: Database,
  groupId: Uint8Array,
  cachedTag?: Uint8Array,
): Promise<LoadedRow | undefined> {
  const rows = await db.select(loadedColumns(cachedTag)).from(groups).where(eq(groups.groupId, groupId));
  return rows[0] === undefined ? undefined : loaded(rows[0]);
}

/** The public key queue-deleted reports are sealed to, without the state. */
export async function readQueueReportKey(db: Database, groupId: Uint8Array): Promise<Uint8Array | undefined> {
  const rows = await db
    .select({ key: groups.queueReportKey })
    .from(groups)
    .where(eq(groups.groupId, groupId));
  return rows[0]?.key;
}

/**
 * Writes the new encrypted state and its fresh `stateTag` (the one write of a request). The
 * queue reports read under the same row lock were folded into the state, so they are cleared.
 */
export async function updateGroup(
  tx: Database,
  groupId: Uint8Array,
  values: { state: Uint8Array; stateTag: Uint8Array; lastActiveMonth: number },
): Promise<void> {
  await tx.update(groups).set(writtenState(values)).where(eq(groups.groupId, groupId));
}

/** The columns a state write sets (the queue reports are folded into the state: cleared). */
function writtenState(values: { state: Uint8Array; stateTag: Uint8Array; lastActiveMonth: number }) {
  return {
    state: values.state,
    stateTag: values.stateTag,
    lastActiveMonth: values.lastActiveMonth,
    queueReports: new Uint8Array(0),
  };
}

/**
 * {@link updateGroup} as the write that goes with a request's claim (`claimAndWriteOutbox`): the
 * row changes only if the claim succeeded, in the claim's own statement.
 */
export function claimedGroupUpdate(
  tx: Database,
  groupId: Uint8Array,
  values: { state: Uint8Array; stateTag: Uint8Array; lastActiveMonth: number },
): ClaimedWrite {
  return (claimed) =>
    tx
      .update(groups)
      .set(writtenState(values))
      .where(and(eq(groups.groupId, groupId), sql`EXISTS (SELECT 1 FROM ${claimed})`))
      .getSQL();
}

export async function deleteGroupRow(tx: Database, groupId: Uint8Array): Promise<void> {
  await tx.delete(groups).where(eq(groups.groupId, groupId));
}

/**
 * Adds a queue-deleted report to a group row under its lock, by the bounding policy of
 * {@link admitReport} (lapsed reports are dropped on the way); undefined if no such group.
 */
export async function addQueueReport(
  db: Database,
  groupId: Uint8Array,
  report: QueueReportRecord,
  max: number,
  today: number,
): Promise<AdmitOutcome | undefined> {
  return transaction(db, async (tx) => {
    const rows = await tx
      .select({ reports: groups.queueReports })
      .from(groups)
      .where(eq(groups.groupId, groupId))
      .for("update");
    const row = rows[0];
    if (row === undefined) return undefined;
    const existing = decodeQueueReports(row.reports);
    const { records, outcome } = admitReport(existing, report, max, today);
    if (outcome === "stored" || records.length !== existing.length) {
      await tx
        .update(groups)
        .set({ queueReports: encodeQueueReports(records) })
        .where(eq(groups.groupId, groupId));
    }
    return outcome;
  });
}

/** Drops lapsed queue-deleted reports from every group row; returns how many reports went. */
export async function pruneQueueReports(db: Database, today: number): Promise<number> {
  const candidates = await db
    .select({ id: groups.groupId })
    .from(groups)
    .where(sql`length(${groups.queueReports}) > 0`);
  let dropped = 0;
  for (const { id } of candidates) {
    dropped += await transaction(db, async (tx) => {
      const rows = await tx
        .select({ reports: groups.queueReports })
        .from(groups)
        .where(eq(groups.groupId, id))
        .for("update");
      const row = rows[0];
      if (row === undefined) return 0;
      const existing = decodeQueueReports(row.reports);
      const live = existing.filter((r) => isLive(r, today));
      if (live.length === existing.length) return 0;
      await tx
        .update(groups)
        .set({ queueReports: encodeQueueReports(live) })
        .where(eq(groups.groupId, id));
      return existing.length - live.length;
    });
  }
  return dropped;
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
