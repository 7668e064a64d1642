// Members' profiles. Every member of a group hands the group its user profile key (encrypted
// under the group's profile-key key, stored by the DS); a joiner reads the others' from its
// WelcomeInfo, and the inviter hands everyone the joiners' keys with the group's title (from
// their friendship packages: the joiners upload theirs only when they come online). A member
// whose profile changed says so with a "profile" notice (an MLS application message): the others
// read its key from the DS again and re-fetch its profile from the AS.
import { decryptUserProfileKey, parseUserId } from "@phoenix/crypto";
import { delivery } from "@phoenix/proto";
import { DS } from "../constants.js";
import type { ClientCore } from "../core/client-core.js";
import { type ConversationRow, dsSigned } from "../core/conversations.js";
import type { SyncResult } from "../types.js";
import { sendApp } from "./group-primitives.js";
import { withCatchUp } from "./groups.js";

/** Key-value entry: conversations that still have to be told this user's profile changed. */
const NOTICES_DUE = "profile-notices-due";

/**
 * Records the profile keys members shared in conversation `c` (as the DS returns them, by
 * leaf); the users whose key is new to this client. Keys that do not open are skipped.
 */
export function learnProfileKeys(
  core: ClientCore,
  c: ConversationRow,
  members: readonly { leafIndex: number; encryptedUserProfileKey: Uint8Array }[],
): string[] {
  const changed: string[] = [];
  for (const m of members) {
    if (m.encryptedUserProfileKey.length === 0) continue;
    const userId = core.members.memberAt(c.id, m.leafIndex);
    if (userId === undefined || userId === core.identity.userId) continue;
    let key: Uint8Array;
    try {
      key = decryptUserProfileKey(c.profileKeyKey, parseUserId(userId), m.encryptedUserProfileKey);
    } catch {
      // Not sealed for this user under the group's key: it names nobody.
      continue;
    }
    if (core.profiles.rememberKey(userId, key)) changed.push(userId);
  }
  return changed;
}

/**
 * Fetches the profiles of `userIds` (best effort: one that cannot be read keeps its cached
 * name). With `announce`, a changed display name becomes a "renamed" event in every active
 * conversation the user is a member of (once: the notices of its other conversations then
 * find the name unchanged).
 */
export async function fetchProfiles(
  core: ClientCore,
  userIds: readonly string[],
  announce = false,
): Promise<void> {
  for (const userId of new Set(userIds)) {
    const names = await core.profiles.refresh(userId).catch(() => undefined);
    if (names === undefined || !announce) continue;
    const { before, after } = names;
    if (before === undefined || after === undefined || before === after) continue;
    for (const id of core.members.conversationsOf(userId))
      if (core.conversations.row(id).status === "active")
        core.conversations.insertEvent(id, { type: "renamed", users: [userId], previousName: before }, false);
  }
}

/**
 * Reads the members' profile keys of conversation `id` from its DS and fetches the profiles of
 * `userIds` (default: everyone whose key is new or whose profile was never read).
 */
export async function refreshMemberProfiles(
  core: ClientCore,
  id: string,
  userIds?: readonly string[],
  announce = false,
): Promise<void> {
  const c = core.conversations.row(id);
  if (c.status !== "active" || c.state === undefined) return;
  const info = await core.transport.delivery.externalCommitInfo({
    signed: await dsSigned(c, delivery.ExternalCommitInfoTbs, DS.externalCommitInfo, { groupId: c.groupId }),
    groupStateEarKey: c.earKey,
  });
  const changed = learnProfileKeys(core, c, info.members);
  const due = userIds ?? [...changed, ...core.profiles.unfetched()];
  await fetchProfiles(core, due, announce);
}

/** How many syncs try a notice before it is given up (the group may be gone, or its DS). */
const NOTICE_ATTEMPTS = 5;

/** Marks conversations where members must be told this user's profile (key) changed. */
export function profileNoticeDue(core: ClientCore, ids: readonly string[]): void {
  const due = core.store.getJson<Record<string, number>>(NOTICES_DUE) ?? {};
  for (const id of ids) due[id] = 0;
  core.store.setJson(NOTICES_DUE, due);
}

/**
 * Sends the due "profile" notices (after a display-name change), catching up first when the
 * DS says this client is behind. A failed notice stays due for the next sync, up to
 * {@link NOTICE_ATTEMPTS} tries; each failure is reported in `result`.
 */
export async function sendProfileNotices(core: ClientCore, result: SyncResult): Promise<void> {
  const due = core.store.getJson<Record<string, number>>(NOTICES_DUE) ?? {};
  for (const id of Object.keys(due)) {
    let failed = false;
    try {
      await withCatchUp(core, id, async () => {
        const c = core.conversations.row(id);
        if (c.status === "active" && c.state !== undefined) await sendApp(core, c, { type: "profile" });
      });
    } catch (error) {
      failed = true;
      result.errors.push(`profile notice: ${(error as Error).message}`);
    }
    const left = core.store.getJson<Record<string, number>>(NOTICES_DUE) ?? {};
    const attempts = (left[id] ?? 0) + 1;
    if (failed && attempts < NOTICE_ATTEMPTS) left[id] = attempts;
    else delete left[id];
    core.store.setJson(NOTICES_DUE, left);
  }
}
