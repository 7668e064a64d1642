import type { CallContext } from "@phoenix/runtime/grpc";
import { callerAddressOf, type NamedRateLimit } from "@phoenix/runtime/rate-limit";
import type { AuthContext } from "../context.js";

/**
 * Charges one request of the calling peer (or, behind a trusted proxy, the client it forwards
 * for; for a request a peer homeserver forwarded, that domain) to `limit`; RESOURCE_EXHAUSTED
 * naming the limit when it is used up. Runs before any decoding or database work, so a flood
 * costs the AS as little as possible.
 */
export function limitCaller(ctx: AuthContext, limit: NamedRateLimit, call: CallContext): void {
  limit.take(callerAddressOf(call, ctx.trustedProxies), ctx.now().getTime());
}

/**
 * {@link limitCaller} as the `admit` hook of a federated RPC: a local client's requests for
 * another domain are charged here too, before they leave for the peer.
 */
export function callerLimit(ctx: AuthContext, limit: NamedRateLimit) {
  return (_request: unknown, call: CallContext): void => limitCaller(ctx, limit, call);
}
