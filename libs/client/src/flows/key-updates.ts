// Periodic self-update: a client refreshes its leaf in every group it is in at least once per
// interval, so a key stolen from a device stops decrypting new messages (post-compromise
// security). When each leaf was last refreshed is kept with the conversations (the store's key-value table).
import type { ClientCore } from "../core/client-core.js";
import * as t from "../store/schema.js";
import { updateKeys } from "./groups.js";

/** Default longest age of a client's leaf in a group: one week. */
export const DEFAULT_KEY_UPDATE_MAX_AGE_MS = 7 * 24 * 60 * 60 * 1000;

/** What one {@link updateStaleKeys} round did. */
export interface KeyUpdateResult {
  /** Conversations whose leaf was refreshed. */
  updated: string[];
  /** Conversations whose update failed (retried next round), with the reason. */
  errors: string[];
}

/**
 * Refreshes this client's leaf in every active conversation where it is older than `maxAgeMs`.
 * A failure (e.g. the group's homeserver unreachable) is reported and retried next round.
 */
export async function updateStaleKeys(
  core: ClientCore,
  maxAgeMs: number,
  now: () => number = Date.now,
): Promise<KeyUpdateResult> {
  const result: KeyUpdateResult = { updated: [], errors: [] };
  const rows = core.store.db.select().from(t.conversations).all();
  for (const row of rows) {
    if (row.status !== "active" || row.mlsState === null) continue;
    if (now() - core.conversations.keysUpdatedAt(row) < maxAgeMs) continue;
    try {
      await updateKeys(core, row.id);
      core.conversations.recordKeyUpdate(row.id, now());
      result.updated.push(row.id);
    } catch (error) {
      result.errors.push(`${row.id}: ${(error as Error).message}`);
    }
  }
  return result;
}
