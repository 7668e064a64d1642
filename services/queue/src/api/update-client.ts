import { bytesEqual } from "@phoenix/crypto";
import { queue, rpcLabel } from "@phoenix/proto";
import { eq } from "drizzle-orm";
import { ed25519Key, x25519Key } from "../domain/validate.js";
import { qsClients } from "../store/schema.js";
import { authenticateClient, type QsDeps } from "./deps.js";

const LABEL = rpcLabel(queue.QueueServiceService.updateClient);

/**
 * UpdateClient: new client record key and queue encryption key. Queued messages stay readable
 * with the old ratchet; a changed queue key makes the next message a key update to the new key.
 */
export async function updateClient(
  deps: QsDeps,
  request: queue.UpdateClientRequest,
): Promise<queue.UpdateClientResponse> {
  const { tbs, client } = await authenticateClient(deps, request.signed, queue.UpdateClientTbs, LABEL);
  const authKey = ed25519Key(tbs.clientRecordAuthKey, "tbs.client_record_auth_key");
  const queueKey = x25519Key(tbs.queueEncryptionKey, "tbs.queue_encryption_key");
  const keyChanged = !bytesEqual(queueKey, client.queueKey);
  await deps.db
    .update(qsClients)
    .set({ authKey, queueKey, ...(keyChanged ? { keyUpdateDue: true } : {}) })
    .where(eq(qsClients.clientId, client.clientId));
  return {};
}
