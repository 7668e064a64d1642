import type { auth } from "@phoenix/proto";
import { NotFoundError } from "@phoenix/runtime/errors";
import type { AuthContext } from "../context.js";
import { malformed } from "../domain/errors.js";
import { parseUserId } from "../domain/ids.js";
import { Limits } from "../domain/limits.js";
import { findProfile } from "../store/users.js";

/**
 * GetUserProfile: the encrypted profile filed under the caller's key index (public; federated by
 * user id). Limited per caller (routes.ts): without it anyone could probe which user ids exist.
 */
export async function getUserProfile(
  ctx: AuthContext,
  request: auth.GetUserProfileRequest,
): Promise<auth.GetUserProfileResponse> {
  const userId = parseUserId(request.userId, "user_id");
  if (request.keyIndex.length === 0 || request.keyIndex.length > Limits.keyIndex) {
    throw malformed("key_index", `must be 1 to ${Limits.keyIndex} bytes`);
  }
  const profile = await findProfile(ctx.db, userId.uuid, request.keyIndex);
  if (!profile) throw new NotFoundError("no such user, or no profile with that key index");
  return { encryptedUserProfile: profile };
}
