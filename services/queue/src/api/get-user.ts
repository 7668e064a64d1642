import { queue, rpcLabel } from "@phoenix/proto";
import { StorageLabel } from "../domain/storage-keys.js";
import { clientsOf } from "../store/clients.js";
import { authenticateUser, type QueueContext } from "./context.js";

const LABEL = rpcLabel(queue.QueueServiceService.getUser);

/** GetUser: the own user record with its client records. */
export async function getUser(
  ctx: QueueContext,
  request: queue.GetUserRequest,
): Promise<queue.GetUserResponse> {
  const { user, claim } = await authenticateUser(ctx, request.signed, queue.GetUserTbs, LABEL);
  await claim(ctx.db);
  const clients = await clientsOf(ctx.db, user.userId);
  return {
    userRecordAuthKey: user.authKey,
    friendshipToken: ctx.storage.open(
      StorageLabel.FriendshipToken,
      user.encryptedFriendshipToken,
      user.userId,
    ),
    clients: clients.map((c) => ({
      qsClientId: c.clientId,
      clientRecordAuthKey: c.authKey,
      queueEncryptionKey: c.queueKey,
      hasPushToken: c.encryptedPushToken !== null,
      lastActiveAt: c.lastActiveAt,
    })),
  };
}
