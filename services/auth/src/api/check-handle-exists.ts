import { auth } from "@phoenix/proto";
import { federatedUnary } from "@phoenix/runtime/federation";
import type { AuthContext } from "../context.js";
import { parseHandleHash, requestDomain } from "../domain/ids.js";
import { findLiveHandle } from "../store/handles.js";
import { callerLimit } from "./rate-limit.js";

/** CheckHandleExists: whether a handle is registered and not expired (public; federated by `domain`). */
export function checkHandleExists(ctx: AuthContext) {
  return federatedUnary(
    auth.AuthServiceService.checkHandleExists,
    ctx.router,
    (request) => requestDomain(request.domain, "domain"),
    async (request) => {
      const hash = parseHandleHash(request.handleHash, "handle_hash");
      return { exists: (await findLiveHandle(ctx.db, hash, ctx.now())) !== undefined };
    },
    { admit: callerLimit(ctx, ctx.limits.checkHandle) },
  );
}
