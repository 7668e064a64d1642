import { auth } from "@phoenix/proto";
import type { AuthContext } from "../context.js";
import { asClient } from "./authenticate.js";
import { dequeueFrom } from "./dequeue.js";

/** DequeueConnectionOffers: the signing client reads its connection queue. */
export async function dequeueConnectionOffers(
  ctx: AuthContext,
  request: auth.DequeueConnectionOffersRequest,
): Promise<auth.DequeueConnectionOffersResponse> {
  return asClient(
    ctx,
    request,
    auth.DequeueConnectionOffersTbs,
    auth.AuthServiceService.dequeueConnectionOffers,
    ({ tbs, clientKey }, tx) =>
      dequeueFrom(ctx, tx, { client: clientKey }, tbs.sequenceNumberStart, tbs.maxMessages),
  );
}
