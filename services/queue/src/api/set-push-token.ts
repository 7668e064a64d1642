import { queue, rpcLabel } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import { LIMITS } from "../domain/limits.js";
import { pushTokenAtRest } from "../domain/push-token.js";
import { limited } from "../domain/validate.js";
import { setEncryptedPushToken } from "../store/clients.js";
import { authenticateClient, keyRing, type QueueContext } from "./context.js";

const LABEL = rpcLabel(queue.QueueServiceService.setPushToken);

/** SetPushToken: sets (or with an empty token clears) the client's push token. */
export async function setPushToken(
  ctx: QueueContext,
  request: queue.SetPushTokenRequest,
): Promise<queue.SetPushTokenResponse> {
  const { tbs, client, claim } = await authenticateClient(ctx, request.signed, queue.SetPushTokenTbs, LABEL);
  const sealed = limited(tbs.sealedPushToken, LIMITS.sealedPushToken, "tbs.sealed_push_token");
  const keys = keyRing(ctx).usableConfigKeys(ctx.now());
  const encrypted = pushTokenAtRest(
    ctx.storage,
    keys,
    sealed,
    client.clientId,
    "tbs.sealed_push_token",
    ctx.webhookPolicy,
  );
  await transaction(ctx.db, async (tx) => {
    await claim(tx);
    await setEncryptedPushToken(tx, client.clientId, encrypted);
  });
  return {};
}
