import { auth } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import type { AuthContext } from "../context.js";
import { authenticateHandle } from "./authenticate.js";
import { dequeueFrom } from "./dequeue.js";

/** DequeueHandleConnectionOffers: the handle's owner reads the handle's connection queue. */
export async function dequeueHandleConnectionOffers(
  ctx: AuthContext,
  request: auth.DequeueHandleConnectionOffersRequest,
): Promise<auth.DequeueHandleConnectionOffersResponse> {
  const now = ctx.now();
  return transaction(ctx.db, async (tx) => {
    const { tbs, handle } = await authenticateHandle(
      ctx,
      tx,
      request.signed,
      auth.DequeueHandleConnectionOffersTbs,
      auth.AuthServiceService.dequeueHandleConnectionOffers,
      now,
    );
    return dequeueFrom(ctx, tx, { handleHash: handle.handleHash }, tbs.sequenceNumberStart, tbs.maxMessages);
  });
}
