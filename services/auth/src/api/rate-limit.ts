import type { CallContext } from "@phoenix/runtime/grpc";
import type { AuthContext } from "../context.js";
import { callerAddress } from "../domain/caller.js";
import type { NamedRateLimit } from "../domain/rate-limiter.js";

/** Metadata key a trusted proxy (the edge gateway) uses to name the client it forwards for. */
export const FORWARDED_FOR_KEY = "x-forwarded-for";

/**
 * Charges one request of the calling peer (or, behind a trusted proxy, the client it forwards
 * for) to `limit`; RESOURCE_EXHAUSTED naming the limit when it is used up. Runs before any
 * decoding or database work, so a flood costs the AS as little as possible.
 */
export function limitCaller(ctx: AuthContext, limit: NamedRateLimit, call: CallContext): void {
  const forwarded = call.metadata
    .get(FORWARDED_FOR_KEY)
    .map((v) => (typeof v === "string" ? v : v.toString()));
  limit.take(callerAddress(call.peer, forwarded, ctx.trustedProxies), ctx.now().getTime());
}
