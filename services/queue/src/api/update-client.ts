import { bytesEqual } from "@phoenix/crypto";
import { queue, rpcLabel } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import { ceilTo, coarseStep } from "../domain/limits.js";
import { ed25519Key, x25519Key } from "../domain/validate.js";
import { keepPreviousAuthKey } from "../store/auth-keys.js";
import { updateClientKeys } from "../store/clients.js";
import { authenticateClient, type QueueContext } from "./context.js";

const LABEL = rpcLabel(queue.QueueServiceService.updateClient);

/**
 * UpdateClient: new client record key and queue encryption key. Queued messages stay readable
 * with the old ratchet; a changed queue key makes the next message a key update to the new key.
 * A replaced auth key keeps verifying queue configs sealed with it (held by DS groups and
 * KeyPackages) for the auth-key grace period, so the client has time to re-seal them; requests
 * must use the new key at once.
 */
export async function updateClient(
  ctx: QueueContext,
  request: queue.UpdateClientRequest,
): Promise<queue.UpdateClientResponse> {
  const { tbs, client, claim } = await authenticateClient(ctx, request.signed, queue.UpdateClientTbs, LABEL);
  const authKey = ed25519Key(tbs.clientRecordAuthKey, "tbs.client_record_auth_key");
  const queueKey = x25519Key(tbs.queueEncryptionKey, "tbs.queue_encryption_key");
  const keyChanged = !bytesEqual(queueKey, client.queueKey);
  const authKeyChanged = !bytesEqual(authKey, client.authKey);
  const now = ctx.now();
  await transaction(ctx.db, async (tx) => {
    await claim(tx);
    await updateClientKeys(tx, client.clientId, { authKey, queueKey }, keyChanged);
    if (authKeyChanged && ctx.authKeyGraceMs > 0) {
      // Rounded up (to 1/24 of the grace, at most an hour): the stored time does not date the change.
      const until = ceilTo(now + ctx.authKeyGraceMs, coarseStep(ctx.authKeyGraceMs));
      await keepPreviousAuthKey(tx, client.clientId, client.authKey, until, new Date(now));
    }
  });
  return {};
}
