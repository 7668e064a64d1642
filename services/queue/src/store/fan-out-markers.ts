import type { Database } from "@phoenix/runtime/db";
import { lt } from "drizzle-orm";
import { qsHandledFanOuts } from "./schema.js";

/**
 * Records the markers of handled fan-outs; returns those that were not recorded before (the
 * others are redeliveries).
 */
export async function insertFanOutMarkers(
  db: Database,
  markers: readonly Uint8Array[],
  handledAt: Date,
): Promise<Uint8Array[]> {
  const fresh = await db
    .insert(qsHandledFanOuts)
    .values(markers.map((marker) => ({ marker, handledAt })))
    .onConflictDoNothing()
    .returning({ marker: qsHandledFanOuts.marker });
  return fresh.map((f) => f.marker);
}

/** Deletes the markers of fan-outs handled before `cutoff` (past the redelivery window). */
export async function deleteFanOutMarkersBefore(db: Database, cutoff: Date): Promise<void> {
  await db.delete(qsHandledFanOuts).where(lt(qsHandledFanOuts.handledAt, cutoff));
}
