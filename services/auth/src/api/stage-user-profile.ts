import { auth } from "@phoenix/proto";
import type { AuthContext } from "../context.js";
import { profileKeyIndex } from "../domain/profile.js";
import { putProfile } from "../store/users.js";
import { asClient } from "./authenticate.js";

/** StageUserProfile: puts a new encrypted profile next to the current one (replacing a staged one). */
export async function stageUserProfile(
  ctx: AuthContext,
  request: auth.StageUserProfileRequest,
): Promise<auth.StageUserProfileResponse> {
  await asClient(
    ctx,
    request,
    auth.StageUserProfileTbs,
    auth.AuthServiceService.stageUserProfile,
    async ({ tbs, clientKey }, tx) => {
      const keyIndex = profileKeyIndex(tbs.encryptedUserProfile, "tbs.encrypted_user_profile");
      await putProfile(tx, clientKey.userUuid, "staged", keyIndex, tbs.encryptedUserProfile);
    },
  );
  return {};
}
