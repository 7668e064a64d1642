import { auth } from "@phoenix/proto";
import { FailedPreconditionError } from "@phoenix/runtime/errors";
import type { AuthContext } from "../context.js";
import { mergeProfile } from "../store/users.js";
import { asClient } from "./authenticate.js";

/** MergeUserProfile: the staged profile becomes the current one; the previous current one goes. */
export async function mergeUserProfile(
  ctx: AuthContext,
  request: auth.MergeUserProfileRequest,
): Promise<auth.MergeUserProfileResponse> {
  await asClient(
    ctx,
    request,
    auth.MergeUserProfileTbs,
    auth.AuthServiceService.mergeUserProfile,
    async ({ clientKey }, tx) => {
      if (!(await mergeProfile(tx, clientKey.userUuid)))
        throw new FailedPreconditionError("no profile is staged");
    },
  );
  return {};
}
