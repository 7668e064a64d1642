import type { auth } from "@phoenix/proto";
import { unary } from "@phoenix/runtime/grpc";
import type { AuthContext } from "../context.js";
import { checkLocalDomain, parseHandleHash } from "../domain/ids.js";
import { findLiveHandle } from "../store/handles.js";
import { enqueueInto } from "./enqueue.js";
import { limitCaller } from "./rate-limit.js";

/** EnqueueHandleConnectionOffer: anyone may drop an offer into a live handle's queue. */
export function enqueueHandleConnectionOffer(ctx: AuthContext) {
  return unary<auth.EnqueueHandleConnectionOfferRequest, auth.EnqueueHandleConnectionOfferResponse>(
    async (request, call) => {
      limitCaller(ctx, ctx.limits.enqueuePerCaller, call);
      const hash = parseHandleHash(request.handleHash, "handle_hash");
      checkLocalDomain(request.domain, ctx.config.AS_DOMAIN, "domain");
      await enqueueInto(
        ctx,
        { handleHash: hash },
        request.connectionOffer,
        async (tx) => (await findLiveHandle(tx, hash, ctx.now())) !== undefined,
      );
      return {};
    },
  );
}
