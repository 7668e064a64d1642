import { auth } from "@phoenix/proto";
import type { AuthContext } from "../context.js";
import { asHandle } from "./authenticate.js";
import { dequeueFrom } from "./dequeue.js";

/** DequeueHandleConnectionOffers: the handle's owner reads the handle's connection queue. */
export async function dequeueHandleConnectionOffers(
  ctx: AuthContext,
  request: auth.DequeueHandleConnectionOffersRequest,
): Promise<auth.DequeueHandleConnectionOffersResponse> {
  return asHandle(
    ctx,
    request,
    auth.DequeueHandleConnectionOffersTbs,
    auth.AuthServiceService.dequeueHandleConnectionOffers,
    ({ tbs, handle }, tx) =>
      dequeueFrom(ctx, tx, { handleHash: handle.handleHash }, tbs.sequenceNumberStart, tbs.maxMessages),
  );
}
