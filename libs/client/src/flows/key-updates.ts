// Periodic self-update: a client refreshes its leaf in every group it is in at least once per
// interval, so a key stolen from a device stops decrypting new messages (post-compromise
// security). When each group's leaf was last refreshed is kept in the store's key-value table.
import type { ClientCore } from "../core.js";
import * as t from "../store/schema.js";
import { updateKeys } from "./groups.js";

/** Default longest age of a client's leaf in a group: one week. */
export const DEFAULT_KEY_UPDATE_MAX_AGE_MS = 7 * 24 * 60 * 60 * 1000;

const keyOf = (conversationId: string) => `keys-updated:${conversationId}`;

/** What one {@link updateStaleKeys} round did. */
export interface KeyUpdateResult {
  /** Conversations whose leaf was refreshed. */
  updated: string[];
  /** Conversations whose update failed (retried next round), with the reason. */
  errors: string[];
}

/** Remembers that this client's leaf in `conversationId` was refreshed at `at` (ms). */
export function recordKeyUpdate(core: ClientCore, conversationId: string, at: number): void {
  core.store.setJson(keyOf(conversationId), at);
}

/** When this client's leaf in a conversation was last refreshed: its last update, else the join. */
export function lastKeyUpdate(core: ClientCore, conversation: { id: string; createdAt: number }): number {
  return core.store.getJson<number>(keyOf(conversation.id)) ?? conversation.createdAt;
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
    if (now() - lastKeyUpdate(core, row) < maxAgeMs) continue;
    try {
      await updateKeys(core, row.id);
      recordKeyUpdate(core, row.id, now());
      result.updated.push(row.id);
    } catch (error) {
      result.errors.push(`${row.id}: ${(error as Error).message}`);
    }
  }
  return result;
}
