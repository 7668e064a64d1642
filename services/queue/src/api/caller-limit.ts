import type { CallContext } from "@phoenix/runtime/grpc";
import { callerAddressOf, type NamedRateLimit } from "@phoenix/runtime/rate-limit";
import type { QueueContext } from "./context.js";

/**
 * Charges one request of the calling peer (behind a trusted proxy: the client it forwards for)
 * to `limit`; RESOURCE_EXHAUSTED naming the limit when used up. Runs before any decoding or
 * database work, so a flood costs the QS as little as possible.
 */
export function limitCaller(ctx: QueueContext, limit: NamedRateLimit, call: CallContext): void {
  limit.take(callerAddressOf(call, ctx.trustedProxies), ctx.now());
}
