import { queue, rpcLabel } from "@phoenix/proto";
import { StorageLabel } from "../domain/storage-keys.js";
import { clientsOf } from "../store/records-store.js";
import { authenticateUser, type QsDeps } from "./deps.js";

const LABEL = rpcLabel(queue.QueueServiceService.getUser);

/** GetUser: the own user record with its client records. */
export async function getUser(deps: QsDeps, request: queue.GetUserRequest): Promise<queue.GetUserResponse> {
  const { user, claim } = await authenticateUser(deps, request.signed, queue.GetUserTbs, LABEL);
  await claim(deps.db);
  const clients = await clientsOf(deps.db, user.userId);
  return {
    userRecordAuthKey: user.authKey,
    friendshipToken: deps.storage.open(
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
