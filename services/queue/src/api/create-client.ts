import { common, queue, rpcLabel } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import { quota, unauthenticated } from "../domain/errors.js";
import { LIMITS } from "../domain/limits.js";
import { ed25519Key, limited, x25519Key } from "../domain/validate.js";
import { countClientsOf } from "../store/clients.js";
import { findUser } from "../store/users.js";
import { prepareClientRecord, storeClientRecord } from "./client-record.js";
import { authenticateUser, type QueueContext } from "./context.js";

const LABEL = rpcLabel(queue.QueueServiceService.createClient);

/** CreateClient: another client record (with its queue) for the signing user. */
export async function createClient(
  ctx: QueueContext,
  request: queue.CreateClientRequest,
): Promise<queue.CreateClientResponse> {
  const { tbs, user, claim } = await authenticateUser(ctx, request.signed, queue.CreateClientTbs, LABEL);
  const input = {
    clientRecordAuthKey: ed25519Key(tbs.clientRecordAuthKey, "tbs.client_record_auth_key"),
    queueEncryptionKey: x25519Key(tbs.queueEncryptionKey, "tbs.queue_encryption_key"),
    sealedPushToken: limited(tbs.sealedPushToken, LIMITS.sealedPushToken, "tbs.sealed_push_token"),
  };
  const prepared = prepareClientRecord(ctx, input, "tbs.sealed_push_token");
  await transaction(ctx.db, async (tx) => {
    await claim(tx);
    // The user row lock serialises concurrent CreateClient calls against the client limit.
    if ((await findUser(tx, user.userId, true)) === undefined) {
      throw unauthenticated(common.ErrorReason.ERROR_REASON_UNKNOWN_SENDER, "the user record is unknown");
    }
    const count = await countClientsOf(tx, user.userId);
    if (count >= ctx.limits.maxClientsPerUser)
      throw quota("clients per user", ctx.limits.maxClientsPerUser, count + 1);
    await storeClientRecord(ctx, tx, user.userId, input, prepared);
  });
  return { qsClientId: prepared.clientId };
}
