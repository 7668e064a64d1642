import { createHmac } from "node:crypto";
import { eq, inArray, lte } from "drizzle-orm";
import type { Database } from "../db/types.js";
import { seenRequests } from "./schema.js";

/** A replay store was built without a usable marker key. */
export class ReplayStoreError extends Error {
  override readonly name = "ReplayStoreError";
}

/**
 * The marker of a request: HMAC-SHA256 under `key` of the length-prefixed `parts` (typically the
 * sender and the request id), so distinct part lists never collide and the table shows no ids.
 */
export function seenRequestMarker(key: Uint8Array, parts: readonly Uint8Array[]): Uint8Array {
  const mac = createHmac("sha256", key);
  for (const part of parts) {
    const length = new Uint8Array(4);
    new DataView(length.buffer).setUint32(0, part.length);
    mac.update(length);
    mac.update(part);
  }
  return new Uint8Array(mac.digest());
}

/**
 * Records `marker` until `expiresAt`; false when it is already recorded (a replay). Run it in the
 * request's transaction: a request that rolls back leaves no trace and can be retried as it is,
 * one that commits can never be accepted again, by any replica.
 */
export async function claimSeenRequest(tx: Database, marker: Uint8Array, expiresAt: Date): Promise<boolean> {
  const rows = await tx
    .insert(seenRequests)
    .values({ marker, expiresAt })
    .onConflictDoNothing()
    .returning({ marker: seenRequests.marker });
  return rows.length > 0;
}

/** Whether `marker` is recorded: a request refused for another reason may still be a replay. */
export async function seenRequestRecorded(db: Database, marker: Uint8Array): Promise<boolean> {
  const rows = await db
    .select({ marker: seenRequests.marker })
    .from(seenRequests)
    .where(eq(seenRequests.marker, marker))
    .limit(1);
  return rows.length > 0;
}

/** Forgets markers whose replay window has passed (`expires_at <= now`); returns how many. */
export async function sweepSeenRequests(db: Database, now: Date): Promise<number> {
  const rows = await db
    .delete(seenRequests)
    .where(lte(seenRequests.expiresAt, now))
    .returning({ marker: seenRequests.marker });
  return rows.length;
}

/**
 * The replay guard of one service: markers keyed with the service's secret (at least 16 bytes;
 * it comes from the service's configuration, a secret kept out of the database, or the markers
 * could be tested against guessed ids and would be the same in every deployment).
 */
export class ReplayStore {
  private readonly key: Uint8Array;
  private readonly previousKeys: readonly Uint8Array[];

  /**
   * `previousKeys`: marker keys being rotated away from (derived from a previous secret). A
   * request recorded under one of them within its window still counts as seen, so a key change
   * opens no window for replays.
   */
  constructor(markerKey: Uint8Array, previousKeys: readonly Uint8Array[] = []) {
    for (const key of [markerKey, ...previousKeys]) {
      if (key.length < 16) throw new ReplayStoreError("replay marker key must be at least 16 bytes");
    }
    this.key = markerKey.slice();
    this.previousKeys = previousKeys.map((key) => key.slice());
  }

  /** The marker of `parts` under this store's key. */
  marker(parts: readonly Uint8Array[]): Uint8Array {
    return seenRequestMarker(this.key, parts);
  }

  /**
   * The one marker a claim of `parts` needs, for a caller that inserts it in its own statement
   * (`claimAndWriteOutbox`); undefined while earlier keys are being rotated away from, because
   * then a claim must also look for their markers (use `claim`).
   */
  singleMarker(parts: readonly Uint8Array[]): Uint8Array | undefined {
    return this.previousKeys.length === 0 ? this.marker(parts) : undefined;
  }

  /** Claims `parts` (sender, request id) until `expiresAt` in `tx`; false for a replay. */
  async claim(tx: Database, parts: readonly Uint8Array[], expiresAt: Date): Promise<boolean> {
    if (!(await claimSeenRequest(tx, this.marker(parts), expiresAt))) return false;
    if (this.previousKeys.length === 0) return true;
    const earlier = this.previousKeys.map((key) => seenRequestMarker(key, parts));
    const found = await tx
      .select({ marker: seenRequests.marker })
      .from(seenRequests)
      .where(inArray(seenRequests.marker, earlier))
      .limit(1);
    return found.length === 0;
  }

  /** Forgets expired markers (of every service sharing the database); returns how many. */
  sweep(db: Database, now: Date): Promise<number> {
    return sweepSeenRequests(db, now);
  }
}
