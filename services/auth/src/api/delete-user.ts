import { bytesEqual } from "@phoenix/crypto";
import { auth } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import { NotFoundError, PermissionDeniedError } from "@phoenix/runtime/errors";
import type { AuthContext } from "../context.js";
import { parseUserId } from "../domain/ids.js";
import { deleteUser as deleteUserRow } from "../store/users.js";
import { authenticateClient } from "./authenticate.js";

/** DeleteUser: the signer's user and everything of it, in one transaction (by cascade). */
export async function deleteUser(
  ctx: AuthContext,
  request: auth.DeleteUserRequest,
): Promise<auth.DeleteUserResponse> {
  const now = ctx.now();
  await transaction(ctx.db, async (tx) => {
    const { tbs, clientKey } = await authenticateClient(
      ctx,
      tx,
      request.signed,
      auth.DeleteUserTbs,
      auth.AuthServiceService.deleteUser,
      now,
    );
    const userId = parseUserId(tbs.userId, "tbs.user_id");
    if (userId.domain !== ctx.config.AS_DOMAIN || !bytesEqual(userId.uuid, clientKey.userUuid)) {
      throw new PermissionDeniedError("user_id is not the signer's user");
    }
    if (!(await deleteUserRow(tx, clientKey.userUuid))) throw new NotFoundError("no such user");
  });
  ctx.log.info({ rpc: "DeleteUser" }, "user deleted");
  return {};
}
