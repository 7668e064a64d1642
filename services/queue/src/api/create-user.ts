import { randomBytes } from "@phoenix/crypto";
import { common, queue, rpcLabel } from "@phoenix/proto";
import { sqlState, transaction } from "@phoenix/runtime/db";
import { InvalidArgumentError } from "@phoenix/runtime/errors";
import type { CallContext } from "@phoenix/runtime/grpc";
import { openSignedRequest } from "@phoenix/runtime/signed-request";
import { unauthenticated } from "../domain/errors.js";
import { ID_LENGTH, LIMITS } from "../domain/limits.js";
import { verifySigned } from "../domain/signed-request.js";
import { HashPurpose, StorageLabel } from "../domain/storage-keys.js";
import { ed25519Key, friendshipToken, limited, x25519Key } from "../domain/validate.js";
import { qsUsers } from "../store/schema.js";
import { limitCaller } from "./caller-limit.js";
import { prepareClientRecord, storeClientRecord } from "./client-record.js";
import type { QsDeps } from "./deps.js";
import { requestClaim } from "./replay.js";

const LABEL = rpcLabel(queue.QueueServiceService.createUser);

/**
 * CreateUser: a user record and its first client record, proven by the new user key's
 * signature. Rate-limited per caller (records cost storage and a queue each).
 */
export async function createUser(
  deps: QsDeps,
  request: queue.CreateUserRequest,
  call: CallContext,
): Promise<queue.CreateUserResponse> {
  limitCaller(deps, deps.rateLimits.createUserPerCaller, call);
  const now = deps.now();
  const opened = openSignedRequest(request.signed, queue.CreateUserTbs, {
    label: LABEL,
    now,
    window: deps.replayWindow,
  });
  if (opened.header.sender !== undefined) {
    throw unauthenticated(
      common.ErrorReason.ERROR_REASON_UNKNOWN_SENDER,
      "CreateUser: header sender must be unset",
    );
  }
  const tbs = opened.tbs;
  const userKey = ed25519Key(tbs.userRecordAuthKey, "tbs.user_record_auth_key");
  const token = friendshipToken(tbs.friendshipToken, "tbs.friendship_token");
  const input = {
    clientRecordAuthKey: ed25519Key(tbs.clientRecordAuthKey, "tbs.client_record_auth_key"),
    queueEncryptionKey: x25519Key(tbs.queueEncryptionKey, "tbs.queue_encryption_key"),
    sealedPushToken: limited(tbs.sealedPushToken, LIMITS.sealedPushToken, "tbs.sealed_push_token"),
  };
  verifySigned(opened, userKey, "the new user record key");
  const claim = requestClaim(deps, opened, userKey);
  const userId = randomBytes(ID_LENGTH);
  const prepared = prepareClientRecord(deps, input, "tbs.sealed_push_token");
  try {
    await transaction(deps.db, async (tx) => {
      await claim(tx);
      await tx.insert(qsUsers).values({
        userId,
        authKey: userKey,
        friendshipTokenHash: deps.storage.hash(HashPurpose.FriendshipTokenLookup, token),
        encryptedFriendshipToken: deps.storage.seal(StorageLabel.FriendshipToken, token, userId),
      });
      await storeClientRecord(deps, tx, userId, input, prepared);
    });
  } catch (error) {
    if (sqlState(error) === "23505") throw new InvalidArgumentError("tbs.friendship_token: already in use");
    throw error;
  }
  return { qsUserId: userId, qsClientId: prepared.clientId };
}
