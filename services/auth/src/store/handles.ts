import type { Database } from "@phoenix/runtime/db";
import { and, eq, gt, lte } from "drizzle-orm";
import { handles } from "./schema.js";

export type HandleRow = typeof handles.$inferSelect;

/** The handle with this hash if it exists and has not expired at `now` (ms). */
export async function findLiveHandle(
  db: Database,
  handleHash: Uint8Array,
  now: number,
): Promise<HandleRow | undefined> {
  const rows = await db
    .select()
    .from(handles)
    .where(and(eq(handles.handleHash, handleHash), gt(handles.expiresAt, new Date(now))))
    .limit(1);
  return rows[0];
}

/** Removes an expired registration of this hash (its queue and packages go by cascade). */
export async function deleteExpiredHandle(db: Database, handleHash: Uint8Array, now: number): Promise<void> {
  await db
    .delete(handles)
    .where(and(eq(handles.handleHash, handleHash), lte(handles.expiresAt, new Date(now))));
}

/** Registers a handle; false when the hash is taken. */
export async function insertHandle(db: Database, row: HandleRow): Promise<boolean> {
  const rows = await db
    .insert(handles)
    .values(row)
    .onConflictDoNothing()
    .returning({ h: handles.handleHash });
  return rows.length > 0;
}

/** Sets a live handle's expiry; false if it is unknown or expired. */
export async function refreshHandle(
  db: Database,
  handleHash: Uint8Array,
  now: number,
  expiresAt: Date,
): Promise<boolean> {
  const rows = await db
    .update(handles)
    .set({ expiresAt })
    .where(and(eq(handles.handleHash, handleHash), gt(handles.expiresAt, new Date(now))))
    .returning({ h: handles.handleHash });
  return rows.length > 0;
}

/** Deletes a handle with its queue and packages; false if unknown. */
export async function deleteHandle(db: Database, handleHash: Uint8Array): Promise<boolean> {
  const rows = await db
    .delete(handles)
    .where(eq(handles.handleHash, handleHash))
    .returning({ h: handles.handleHash });
  return rows.length > 0;
}

/** Deletes every handle expired at `now` (ms); returns how many. */
export async function deleteExpiredHandles(db: Database, now: number): Promise<number> {
  const rows = await db
    .delete(handles)
    .where(lte(handles.expiresAt, new Date(now)))
    .returning({ h: handles.handleHash });
  return rows.length;
}
