// Profiles: the display name, encrypted under the user's profile key and stored on the AS.
import { decodeFriendshipPackage, encryptUserProfile, parseUserId } from "@phoenix/crypto";
import { auth } from "@phoenix/proto";
import { eq } from "drizzle-orm";
import { accountToJson } from "../account.js";
import { AS } from "../constants.js";
import type { ClientCore } from "../core/client-core.js";
import { profileBytes } from "../protocol/codecs.js";
import { u8 } from "../store/client-store.js";
import * as t from "../store/schema.js";
import type { SyncResult } from "../types.js";
import { profileNoticeDue, refreshMemberProfiles, sendProfileNotices } from "./member-profiles.js";

/**
 * Changes the display name: the profile is re-encrypted under the profile key and merged on the
 * AS; then a "profile" notice goes to every active conversation (members re-read the profile).
 */
export async function setDisplayName(core: ClientCore, name: string): Promise<SyncResult> {
  const encrypted = encryptUserProfile(
    core.account.profileKey,
    core.identity.user,
    profileBytes(name),
  ).encrypted;
  await core.transport.auth.stageUserProfile({
    signed: await core.identity.asSigned(auth.StageUserProfileTbs, AS.stageUserProfile, {
      encryptedUserProfile: encrypted,
    }),
  });
  await core.transport.auth.mergeUserProfile({
    signed: await core.identity.asSigned(auth.MergeUserProfileTbs, AS.mergeUserProfile, {}),
  });
  core.account.displayName = name;
  core.store.setJson("account", accountToJson(core.account));
  const active = core.store.db
    .select()
    .from(t.conversations)
    .where(eq(t.conversations.status, "active"))
    .all()
    .map((c) => c.id);
  profileNoticeDue(core, active);
  const result: SyncResult = { processed: 0, errors: [] };
  await sendProfileNotices(core, result);
  return result;
}

/** Re-reads contacts' profiles and those of every active conversation's members (best effort). */
export async function refreshAllProfiles(core: ClientCore): Promise<void> {
  await refreshContactProfiles(core);
  const active = core.store.db
    .select()
    .from(t.conversations)
    .where(eq(t.conversations.status, "active"))
    .all();
  for (const c of active) {
    const users = core.members.rowsOf(c.id).map((m) => m.userId);
    await refreshMemberProfiles(core, c.id, users).catch(() => undefined);
  }
}

/** Fetches every contact's profile from the AS and decrypts it with the profile key they shared. */
export async function refreshContactProfiles(core: ClientCore): Promise<void> {
  for (const c of core.store.db.select().from(t.contacts).all()) {
    const fp = decodeFriendshipPackage(u8(c.friendshipPackage));
    const name = await core.contacts.fetchDisplayName(parseUserId(c.userId), fp.userProfileKey);
    if (name !== undefined)
      core.store.db
        .update(t.contacts)
        .set({ displayName: name })
        .where(eq(t.contacts.userId, c.userId))
        .run();
  }
}
