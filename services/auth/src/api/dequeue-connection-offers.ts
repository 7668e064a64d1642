import { auth } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import type { AuthContext } from "../context.js";
import { authenticateClient } from "./authenticate.js";
import { dequeueFrom } from "./dequeue.js";

/** DequeueConnectionOffers: the signing client reads its connection queue. */
export async function dequeueConnectionOffers(
  ctx: AuthContext,
  request: auth.DequeueConnectionOffersRequest,
): Promise<auth.DequeueConnectionOffersResponse> {
  const now = ctx.now();
  return transaction(ctx.db, async (tx) => {
    const { tbs, clientKey } = await authenticateClient(
      ctx,
      tx,
      request.signed,
      auth.DequeueConnectionOffersTbs,
      auth.AuthServiceService.dequeueConnectionOffers,
      now,
    );
    return dequeueFrom(ctx, tx, { client: clientKey }, tbs.sequenceNumberStart, tbs.maxMessages);
  });
}
