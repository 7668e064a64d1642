import type { auth } from "@phoenix/proto";
import type { AuthContext } from "../context.js";
import { parseHandleHash } from "../domain/ids.js";
import { findLiveHandle } from "../store/handles.js";
import { enqueueInto } from "./enqueue.js";

/** EnqueueHandleConnectionOffer: anyone may drop an offer into a live handle's queue (federated by `domain`). */
export async function enqueueHandleConnectionOffer(
  ctx: AuthContext,
  request: auth.EnqueueHandleConnectionOfferRequest,
): Promise<auth.EnqueueHandleConnectionOfferResponse> {
  const hash = parseHandleHash(request.handleHash, "handle_hash");
  await enqueueInto(
    ctx,
    { handleHash: hash },
    request.connectionOffer,
    async (tx) => (await findLiveHandle(tx, hash, ctx.now())) !== undefined,
  );
  return {};
}
