import { auth } from "@phoenix/proto";
import { federatedUnary } from "@phoenix/runtime/federation";
import type { AuthContext } from "../context.js";
import { parseHandleHash, requestDomain } from "../domain/ids.js";
import { findLiveHandle } from "../store/handles.js";
import { enqueueInto } from "./enqueue.js";
import { callerLimit } from "./rate-limit.js";

/** EnqueueHandleConnectionOffer: anyone may drop an offer into a live handle's queue (federated by `domain`). */
export function enqueueHandleConnectionOffer(ctx: AuthContext) {
  return federatedUnary(
    auth.AuthServiceService.enqueueHandleConnectionOffer,
    ctx.router,
    (request) => requestDomain(request.domain, "domain"),
    async (request) => {
      const hash = parseHandleHash(request.handleHash, "handle_hash");
      await enqueueInto(
        ctx,
        { handleHash: hash },
        request.connectionOffer,
        async (tx) => (await findLiveHandle(tx, hash, ctx.now())) !== undefined,
      );
      return {};
    },
    { admit: callerLimit(ctx, ctx.limits.enqueuePerCaller) },
  );
}
