import type { auth } from "@phoenix/proto";
import { unary } from "@phoenix/runtime/grpc";
import type { AuthContext } from "../context.js";
import { checkLocalDomain, parseHandleHash } from "../domain/ids.js";
import { findLiveHandle } from "../store/handles.js";
import { limitCaller } from "./rate-limit.js";

/** CheckHandleExists: whether a handle is registered and not expired (public). */
export function checkHandleExists(ctx: AuthContext) {
  return unary<auth.CheckHandleExistsRequest, auth.CheckHandleExistsResponse>(async (request, call) => {
    limitCaller(ctx, ctx.limits.checkHandle, call);
    const hash = parseHandleHash(request.handleHash, "handle_hash");
    checkLocalDomain(request.domain, ctx.config.AS_DOMAIN, "domain");
    return { exists: (await findLiveHandle(ctx.db, hash, ctx.now())) !== undefined };
  });
}
