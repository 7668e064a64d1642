import { bytesEqual } from "@phoenix/crypto";
import { auth } from "@phoenix/proto";
import { NotFoundError, PermissionDeniedError } from "@phoenix/runtime/errors";
import type { AuthContext } from "../context.js";
import { parseUserId } from "../domain/ids.js";
import { deleteUser as deleteUserRow } from "../store/users.js";
import { asClient } from "./authenticate.js";

/** DeleteUser: the signer's user and everything of it, in one transaction (by cascade). */
export async function deleteUser(
  ctx: AuthContext,
  request: auth.DeleteUserRequest,
): Promise<auth.DeleteUserResponse> {
  await asClient(
    ctx,
    request,
    auth.DeleteUserTbs,
    auth.AuthServiceService.deleteUser,
    async ({ tbs, clientKey }, tx) => {
      const userId = parseUserId(tbs.userId, "tbs.user_id");
      if (userId.domain !== ctx.config.AS_DOMAIN || !bytesEqual(userId.uuid, clientKey.userUuid)) {
        throw new PermissionDeniedError("user_id is not the signer's user");
      }
      if (!(await deleteUserRow(tx, clientKey.userUuid))) throw new NotFoundError("no such user");
    },
  );
  ctx.log.info({ rpc: "DeleteUser" }, "user deleted");
  return {};
}
