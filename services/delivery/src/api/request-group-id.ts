import { randomBytes } from "@phoenix/crypto";
import type { delivery } from "@phoenix/proto";
import { InternalError } from "@phoenix/runtime/errors";
import type { CallContext } from "@phoenix/runtime/grpc";
import { callerAddressOf } from "@phoenix/runtime/rate-limit";
import { reserveGroupId } from "../store/group-store.js";
import type { DeliveryContext } from "./context.js";

/**
 * RequestGroupId: a fresh uuid@domain, reserved until `expires_at`. Public, so it is limited per
 * caller (each call writes a reservation row) before anything else runs.
 */
export async function requestGroupId(
  ctx: DeliveryContext,
  _request: delivery.RequestGroupIdRequest,
  call: CallContext,
): Promise<delivery.RequestGroupIdResponse> {
  const limit = ctx.groupIdLimit;
  await limit.limit.takeShared(limit.store, callerAddressOf(call, limit.trustedProxies), ctx.now());
  const expiresAt = new Date(ctx.now() + ctx.reservationTtlMs);
  // 122 random bits: a collision is practically impossible, but re-sample rather than fail.
  for (let attempt = 0; attempt < 4; attempt++) {
    const uuid = randomBytes(16);
    uuid[6] = ((uuid[6] ?? 0) & 0x0f) | 0x40;
    uuid[8] = ((uuid[8] ?? 0) & 0x3f) | 0x80;
    if (await reserveGroupId(ctx.db, uuid, expiresAt))
      return { groupId: { uuid, domain: ctx.domain }, expiresAt };
  }
  throw new InternalError("could not reserve a group id");
}
