import { auth } from "@phoenix/proto";
import { federatedUnary } from "@phoenix/runtime/federation";
import type { AuthContext } from "../context.js";
import { parseClientId } from "../domain/ids.js";
import { findClient } from "../store/clients.js";
import { enqueueInto } from "./enqueue.js";
import { callerLimit } from "./rate-limit.js";

/** EnqueueConnectionOffer: anyone may drop an offer into a client's connection queue (federated by client id). */
export function enqueueConnectionOffer(ctx: AuthContext) {
  return federatedUnary(
    auth.AuthServiceService.enqueueConnectionOffer,
    ctx.router,
    (request) => parseClientId(request.clientId, "client_id").userId.domain,
    async (request) => {
      const clientId = parseClientId(request.clientId, "client_id");
      const client = { userUuid: clientId.userId.uuid, clientUuid: clientId.clientUuid };
      await enqueueInto(
        ctx,
        { client },
        request.connectionOffer,
        async (tx) => (await findClient(tx, client)) !== undefined,
      );
      return {};
    },
    { admit: callerLimit(ctx, ctx.limits.enqueuePerCaller) },
  );
}
