import { queue, rpcLabel } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import { deleteUser as deleteUserRecord } from "../store/users.js";
import { authenticateUser, type QueueContext } from "./context.js";

const LABEL = rpcLabel(queue.QueueServiceService.deleteUser);

/** DeleteUser: the user record with every client record, queue and AddPackage (cascade). */
export async function deleteUser(
  ctx: QueueContext,
  request: queue.DeleteUserRequest,
): Promise<queue.DeleteUserResponse> {
  const { user, claim } = await authenticateUser(ctx, request.signed, queue.DeleteUserTbs, LABEL);
  await transaction(ctx.db, async (tx) => {
    await claim(tx);
    await deleteUserRecord(tx, user.userId);
  });
  return {};
}
