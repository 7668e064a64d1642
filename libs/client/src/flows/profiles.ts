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

/** Changes the display name: the profile is re-encrypted under the profile key and merged on the AS. */
export async function setDisplayName(core: ClientCore, name: string): Promise<void> {
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
