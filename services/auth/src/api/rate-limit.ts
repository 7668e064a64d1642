import type { CallContext } from "@phoenix/runtime/grpc";
import { callerAddressOf, type NamedRateLimit } from "@phoenix/runtime/rate-limit";
import type { AuthContext } from "../context.js";

/**
 * Charges one request of the calling peer (or, behind a trusted proxy, the client it forwards
 * for; for a request a peer homeserver forwarded, that domain) to `limit`; RESOURCE_EXHAUSTED
 * naming the limit when it is used up. The bucket lives in the AS database, so the limit holds
 * across replicas. Runs before any decoding or other database work.
 */
export async function limitCaller(ctx: AuthContext, limit: NamedRateLimit, call: CallContext): Promise<void> {
  await limit.takeShared(ctx.rateLimits, callerAddressOf(call, ctx.trustedProxies), ctx.now());
}

/**
 * {@link limitCaller} as the `admit` hook of a federated RPC: a local client's requests for
 * another domain are charged here too, before they leave for the peer.
 */
export function callerLimit(ctx: AuthContext, limit: NamedRateLimit) {
  return (_request: unknown, call: CallContext): Promise<void> => limitCaller(ctx, limit, call);
}

/**
 * Charges one request to the bucket of `target` (a user's uuid, a handle hash, a queue owner) in
 * `limit`, whoever calls: what several callers together may do to one user. `kind` keeps the
 * targets of different kinds apart.
 */
export async function limitTarget(
  ctx: AuthContext,
  limit: NamedRateLimit,
  kind: string,
  target: Uint8Array,
): Promise<void> {
  await limit.takeShared(ctx.rateLimits, Buffer.concat([Buffer.from(`${kind}\0`), target]), ctx.now());
}
