import type { auth } from "@phoenix/proto";
import { unary } from "@phoenix/runtime/grpc";
import type { AuthContext } from "../context.js";
import { checkLocalDomain, parseClientId } from "../domain/ids.js";
import { findClient } from "../store/clients.js";
import { enqueueInto } from "./enqueue.js";
import { limitCaller } from "./rate-limit.js";

/** EnqueueConnectionOffer: anyone may drop an offer into a client's connection queue. */
export function enqueueConnectionOffer(ctx: AuthContext) {
  return unary<auth.EnqueueConnectionOfferRequest, auth.EnqueueConnectionOfferResponse>(
    async (request, call) => {
      limitCaller(ctx, ctx.limits.enqueuePerCaller, call);
      const clientId = parseClientId(request.clientId, "client_id");
      checkLocalDomain(clientId.userId.domain, ctx.config.AS_DOMAIN, "client_id.user.domain");
      const client = { userUuid: clientId.userId.uuid, clientUuid: clientId.clientUuid };
      await enqueueInto(
        ctx,
        { client },
        request.connectionOffer,
        async (tx) => (await findClient(tx, client)) !== undefined,
      );
      return {};
    },
  );
}
