import { auth } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import type { AuthContext } from "../context.js";
import { profileKeyIndex } from "../domain/profile.js";
import { putProfile } from "../store/users.js";
import { authenticateClient } from "./authenticate.js";

/** StageUserProfile: puts a new encrypted profile next to the current one (replacing a staged one). */
export async function stageUserProfile(
  ctx: AuthContext,
  request: auth.StageUserProfileRequest,
): Promise<auth.StageUserProfileResponse> {
  const now = ctx.now();
  await transaction(ctx.db, async (tx) => {
    const { tbs, clientKey } = await authenticateClient(
      ctx,
      tx,
      request.signed,
      auth.StageUserProfileTbs,
      auth.AuthServiceService.stageUserProfile,
      now,
    );
    const keyIndex = profileKeyIndex(tbs.encryptedUserProfile, "tbs.encrypted_user_profile");
    await putProfile(tx, clientKey.userUuid, "staged", keyIndex, tbs.encryptedUserProfile);
  });
  return {};
}
