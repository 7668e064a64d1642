// Sending commits to the DS, and committing what others left waiting: members' self-remove
// proposals and the removals the DS requires (its RequiredRemovals notice).
import {
  type CommitOutput,
  commitPendingProposals,
  commitRemovesMembers,
  exportGroupStateEarKey,
  removeMembers,
} from "@phoenix/mls";
import { delivery } from "@phoenix/proto";
import type { ClientState } from "ts-mls";
import { DS } from "../constants.js";
import type { ClientCore } from "../core/client-core.js";
import { type ConversationRow, dsSigned } from "../core/conversations.js";
import { leafIdentities } from "../protocol/tree.js";
import type { SyncResult } from "../types.js";
import { callOnce, earKeyRotated, epochAhead } from "./ds-errors.js";
import { profileKeyDue, uploadProfileKey } from "./profile-key.js";

/** Key-value entry: the DS's latest RequiredRemovals notice for a group. */
function requiredKey(id: string): string {
  return `required:${id}`;
}

/** Keeps the DS's RequiredRemovals notice for `id`: the next commit must carry these removals. */
export function recordRequiredRemovals(core: ClientCore, id: string, epoch: bigint, leaves: number[]): void {
  core.store.setJson(requiredKey(id), { epoch: epoch.toString(), leaves });
}

/** Commits the proposals waiting in a group (a member's self-remove, DS-required removals). */
export async function commitPending(core: ClientCore, id: string, result: SyncResult): Promise<void> {
  // A profile key that waited for this client to learn the group's rotated EAR key.
  if (profileKeyDue(core, id))
    await uploadProfileKey(core, id).catch((error: Error) =>
      result.errors.push(`profile key upload: ${error.message}`),
    );
  const c = core.conversations.row(id);
  if (c.status !== "active" || c.state === undefined) return;
  const required = requiredLeaves(core, id);
  if (required.length === 0 && Object.keys(c.state.unappliedProposals).length === 0) return;
  // A removal commit also carries every pending proposal.
  const out =
    required.length > 0
      ? await removeMembers(c.state, core.cs, required)
      : await commitPendingProposals(c.state, core.cs);
  const nextKey = await earKeyAfter(core, c.state, out);
  try {
    await submitCommit(core, c, out, nextKey);
  } catch (error) {
    // Another member committed first: its commit is in our queue and brings us up to date. When
    // that commit removed someone (as one carrying a leave does) it also rotated the EAR key, and
    // the DS refuses our old key before it can compare epochs: WRONG_EAR_KEY means the same here.
    if (epochAhead(error)) return;
    if (earKeyRotated(error)) return;
    result.errors.push(`commit of pending proposals: ${(error as Error).message}`);
    return;
  }
  core.store.transaction(() => {
    core.conversations.saveState(id, out.newState, nextKey);
    core.members.applyMembership(c, out.newState, [], core.identity.userId);
    core.store.deleteKey(requiredKey(id));
  });
}

/**
 * Leaves the DS requires removed in the current epoch (its RequiredRemovals notice), still
 * occupied and not our own. A notice for another epoch is stale: the DS sends a fresh one with
 * every write, so leaf indices are never applied to a tree they were not meant for.
 */
export function requiredLeaves(core: ClientCore, id: string): number[] {
  const notice = core.store.getJson<{ epoch: string; leaves: number[] }>(requiredKey(id));
  const state = core.conversations.row(id).state;
  if (notice === undefined || state === undefined || BigInt(notice.epoch) !== state.groupContext.epoch)
    return [];
  const occupied = leafIdentities(state);
  const mine = state.privatePath.leafIndex;
  return [...new Set(notice.leaves)].filter((l) => l !== mine && occupied.has(l));
}

/**
 * The group's next EAR key when `out` removes someone (the MLS exporter of the new epoch: every
 * remaining member derives the same key from the commit, the removed cannot); undefined when the
 * commit keeps the key.
 */
export async function earKeyAfter(
  core: ClientCore,
  stateBefore: ClientState,
  out: CommitOutput,
): Promise<Uint8Array | undefined> {
  if (!commitRemovesMembers(stateBefore, out.commit)) return undefined;
  return exportGroupStateEarKey(out.newState, core.cs);
}

/**
 * Sends a commit (and its GroupInfo, and the Welcome of added clients) to the group's DS, with
 * the group's next EAR key when the commit removes someone.
 */
export async function submitCommit(
  core: ClientCore,
  c: ConversationRow,
  out: { commit: Uint8Array; groupInfo: Uint8Array },
  nextEarKey: Uint8Array | undefined,
  addedClients?: delivery.AddedClientsInfo,
): Promise<void> {
  const request: delivery.GroupOperationRequest = {
    signed: await dsSigned(c, delivery.GroupOperationTbs, DS.groupOperation, {
      groupId: c.groupId,
      commit: out.commit,
      groupInfo: out.groupInfo,
      addedClients,
    }),
    groupStateEarKey: c.earKey,
    newGroupStateEarKey: nextEarKey,
  };
  // A lost answer is resent as the same request: if the first went through, the DS answers that
  // it was replayed (it checks the request id before anything else refuses the retry), and the
  // commit is ours to merge.
  await callOnce(() => core.transport.delivery.groupOperation(request));
}
