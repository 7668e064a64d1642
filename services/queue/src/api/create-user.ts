import { randomBytes } from "@phoenix/crypto";
import { common, queue, rpcLabel } from "@phoenix/proto";
import { sqlState, transaction } from "@phoenix/runtime/db";
import { InvalidArgumentError } from "@phoenix/runtime/errors";
import type { CallContext } from "@phoenix/runtime/grpc";
import { authenticateSignedRequest } from "@phoenix/runtime/signed-request";
import { unauthenticated } from "../domain/errors.js";
import { ID_LENGTH, LIMITS } from "../domain/limits.js";
import { HashPurpose, StorageLabel } from "../domain/storage-keys.js";
import { ed25519Key, friendshipToken, limited, x25519Key } from "../domain/validate.js";
import { insertUser } from "../store/users.js";
import { limitCaller } from "./caller-limit.js";
import { prepareClientRecord, storeClientRecord } from "./client-record.js";
import { type QueueContext, requestPolicy } from "./context.js";

const LABEL = rpcLabel(queue.QueueServiceService.createUser);

/**
 * CreateUser: a user record and its first client record, proven by the new user key's
 * signature. Rate-limited per caller (records cost storage and a queue each).
 */
export async function createUser(
  ctx: QueueContext,
  request: queue.CreateUserRequest,
  call: CallContext,
): Promise<queue.CreateUserResponse> {
  limitCaller(ctx, ctx.rateLimits.createUserPerCaller, call);
  const { signer, claim } = await authenticateSignedRequest(
    requestPolicy(ctx),
    { signed: request.signed, type: queue.CreateUserTbs, method: LABEL },
    (tbs, header) => {
      if (header.sender !== undefined) {
        throw unauthenticated(
          common.ErrorReason.ERROR_REASON_UNKNOWN_SENDER,
          "CreateUser: header sender must be unset",
        );
      }
      // The new user key proves itself: it signs the request that registers it.
      const key = ed25519Key(tbs.userRecordAuthKey, "tbs.user_record_auth_key");
      // Malformed fields are refused before the signature is checked.
      const token = friendshipToken(tbs.friendshipToken, "tbs.friendship_token");
      const input = {
        clientRecordAuthKey: ed25519Key(tbs.clientRecordAuthKey, "tbs.client_record_auth_key"),
        queueEncryptionKey: x25519Key(tbs.queueEncryptionKey, "tbs.queue_encryption_key"),
        sealedPushToken: limited(tbs.sealedPushToken, LIMITS.sealedPushToken, "tbs.sealed_push_token"),
      };
      return { signer: "the new user record key", key, replayScope: [key], token, input };
    },
  );
  const { key: userKey, token, input } = signer;
  const userId = randomBytes(ID_LENGTH);
  const prepared = prepareClientRecord(ctx, input, "tbs.sealed_push_token");
  try {
    await transaction(ctx.db, async (tx) => {
      await claim(tx);
      await insertUser(tx, {
        userId,
        authKey: userKey,
        friendshipTokenHash: ctx.storage.hash(HashPurpose.FriendshipTokenLookup, token),
        encryptedFriendshipToken: ctx.storage.seal(StorageLabel.FriendshipToken, token, userId),
      });
      await storeClientRecord(ctx, tx, userId, input, prepared);
    });
  } catch (error) {
    if (sqlState(error) === "23505") throw new InvalidArgumentError("tbs.friendship_token: already in use");
    throw error;
  }
  return { qsUserId: userId, qsClientId: prepared.clientId };
}
