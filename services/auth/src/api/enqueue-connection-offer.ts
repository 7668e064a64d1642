import type { auth } from "@phoenix/proto";
import type { AuthContext } from "../context.js";
import { parseClientId } from "../domain/ids.js";
import { findClient } from "../store/clients.js";
import { enqueueInto } from "./enqueue.js";

/** EnqueueConnectionOffer: anyone may drop an offer into a client's connection queue (federated by client id). */
export async function enqueueConnectionOffer(
  ctx: AuthContext,
  request: auth.EnqueueConnectionOfferRequest,
): Promise<auth.EnqueueConnectionOfferResponse> {
  const clientId = parseClientId(request.clientId, "client_id");
  const client = { userUuid: clientId.userId.uuid, clientUuid: clientId.clientUuid };
  await enqueueInto(
    ctx,
    { client },
    request.connectionOffer,
    async (tx) => (await findClient(tx, client)) !== undefined,
  );
  return {};
}
