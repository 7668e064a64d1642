import { queue, rpcLabel } from "@phoenix/proto";
import { sqlState, transaction } from "@phoenix/runtime/db";
import { InvalidArgumentError } from "@phoenix/runtime/errors";
import { HashPurpose, StorageLabel } from "../domain/storage-keys.js";
import { ed25519Key, friendshipToken } from "../domain/validate.js";
import { updateUserKeys } from "../store/users.js";
import { authenticateUser, type QueueContext } from "./context.js";

const LABEL = rpcLabel(queue.QueueServiceService.updateUser);

/** UpdateUser: new user record key and friendship token; the old token stops working at once. */
export async function updateUser(
  ctx: QueueContext,
  request: queue.UpdateUserRequest,
): Promise<queue.UpdateUserResponse> {
  const { tbs, user, claim } = await authenticateUser(ctx, request.signed, queue.UpdateUserTbs, LABEL);
  const authKey = ed25519Key(tbs.userRecordAuthKey, "tbs.user_record_auth_key");
  const token = friendshipToken(tbs.friendshipToken, "tbs.friendship_token");
  try {
    await transaction(ctx.db, async (tx) => {
      await claim(tx);
      await updateUserKeys(tx, user.userId, {
        authKey,
        friendshipTokenHash: ctx.storage.hash(HashPurpose.FriendshipTokenLookup, token),
        encryptedFriendshipToken: ctx.storage.seal(StorageLabel.FriendshipToken, token, user.userId),
      });
    });
  } catch (error) {
    if (sqlState(error) === "23505") throw new InvalidArgumentError("tbs.friendship_token: already in use");
    throw error;
  }
  return {};
}
