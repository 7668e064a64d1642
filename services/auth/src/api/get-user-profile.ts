import { auth } from "@phoenix/proto";
import { NotFoundError } from "@phoenix/runtime/errors";
import { federatedUnary } from "@phoenix/runtime/federation";
import type { AuthContext } from "../context.js";
import { malformed } from "../domain/errors.js";
import { parseUserId } from "../domain/ids.js";
import { Limits } from "../domain/limits.js";
import { findProfile } from "../store/users.js";
import { callerLimit } from "./rate-limit.js";

/**
 * GetUserProfile: the encrypted profile filed under the caller's key index (public; federated by
 * user id). Limited per caller: without it anyone could probe which user ids exist.
 */
export function getUserProfile(ctx: AuthContext) {
  return federatedUnary(
    auth.AuthServiceService.getUserProfile,
    ctx.router,
    (request) => parseUserId(request.userId, "user_id").domain,
    async (request) => {
      const userId = parseUserId(request.userId, "user_id");
      if (request.keyIndex.length === 0 || request.keyIndex.length > Limits.keyIndex) {
        throw malformed("key_index", `must be 1 to ${Limits.keyIndex} bytes`);
      }
      const profile = await findProfile(ctx.db, userId.uuid, request.keyIndex);
      if (!profile) throw new NotFoundError("no such user, or no profile with that key index");
      return { encryptedUserProfile: profile };
    },
    { admit: callerLimit(ctx, ctx.limits.profileFetch) },
  );
}
