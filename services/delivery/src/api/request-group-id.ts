import { randomBytes } from "@phoenix/crypto";
import type { delivery } from "@phoenix/proto";
import { InternalError } from "@phoenix/runtime/errors";
import type { CallContext } from "@phoenix/runtime/grpc";
import {
  type AddressMatcher,
  callerAddressOf,
  type NamedRateLimit,
  type SharedRateLimits,
} from "@phoenix/runtime/rate-limit";
import { reserveGroupId } from "../store/group-store.js";
import type { DsDeps } from "./pipeline.js";

/** The per-caller limit of RequestGroupId (DS_CALLER_RATE_GROUP_ID_PER_MINUTE). */
export interface GroupIdLimit {
  readonly limit: NamedRateLimit;
  /** Buckets in the DS database: the limit holds across replicas. */
  readonly store: SharedRateLimits;
  /** Peers whose `x-forwarded-for` names the caller (DS_TRUSTED_PROXIES). */
  readonly trustedProxies: AddressMatcher;
}

/**
 * RequestGroupId: a fresh uuid@domain, reserved until `expires_at`. Public, so it is limited per
 * caller (each call writes a reservation row) before anything else runs.
 */
export async function requestGroupId(
  deps: DsDeps,
  limit: GroupIdLimit,
  _request: delivery.RequestGroupIdRequest,
  call: CallContext,
): Promise<delivery.RequestGroupIdResponse> {
  await limit.limit.takeShared(limit.store, callerAddressOf(call, limit.trustedProxies), deps.ctx.now());
  const expiresAt = new Date(deps.ctx.now() + deps.reservationTtlMs);
  // 122 random bits: a collision is practically impossible, but re-sample rather than fail.
  for (let attempt = 0; attempt < 4; attempt++) {
    const uuid = randomBytes(16);
    uuid[6] = ((uuid[6] ?? 0) & 0x0f) | 0x40;
    uuid[8] = ((uuid[8] ?? 0) & 0x3f) | 0x80;
    if (await reserveGroupId(deps.db, uuid, expiresAt))
      return { groupId: { uuid, domain: deps.ctx.domain }, expiresAt };
  }
  throw new InternalError("could not reserve a group id");
}
