import type { CallContext } from "@phoenix/runtime/grpc";
import { callerAddress, type RateLimit } from "../domain/rate-limit.js";
import type { QsDeps } from "./deps.js";

/** Metadata key a trusted proxy (the edge gateway) uses to name the client it forwards for. */
export const FORWARDED_FOR_KEY = "x-forwarded-for";

/**
 * Charges one request of the calling peer (behind a trusted proxy: the client it forwards for)
 * to `limit`; RESOURCE_EXHAUSTED naming the limit when used up. Runs before any decoding or
 * database work, so a flood costs the QS as little as possible.
 */
export function limitCaller(deps: QsDeps, limit: RateLimit, call: CallContext): void {
  const forwarded = call.metadata
    .get(FORWARDED_FOR_KEY)
    .map((v) => (typeof v === "string" ? v : v.toString()));
  limit.take(callerAddress(call.peer, forwarded, deps.trustedProxies), deps.now());
}
