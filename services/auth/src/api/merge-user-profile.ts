import { auth } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import { FailedPreconditionError } from "@phoenix/runtime/errors";
import type { AuthContext } from "../context.js";
import { mergeProfile } from "../store/users.js";
import { authenticateClient } from "./authenticate.js";

/** MergeUserProfile: the staged profile becomes the current one; the previous current one goes. */
export async function mergeUserProfile(
  ctx: AuthContext,
  request: auth.MergeUserProfileRequest,
): Promise<auth.MergeUserProfileResponse> {
  const now = ctx.now();
  await transaction(ctx.db, async (tx) => {
    const { clientKey } = await authenticateClient(
      ctx,
      tx,
      request.signed,
      auth.MergeUserProfileTbs,
      auth.AuthServiceService.mergeUserProfile,
      now,
    );
    if (!(await mergeProfile(tx, clientKey.userUuid)))
      throw new FailedPreconditionError("no profile is staged");
  });
  return {};
}
