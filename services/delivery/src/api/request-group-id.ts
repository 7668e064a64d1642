import { randomBytes } from "@phoenix/crypto";
import type { delivery } from "@phoenix/proto";
import { InternalError } from "@phoenix/runtime/errors";
import { reserveGroupId } from "../store/group-store.js";
import type { DsDeps } from "./pipeline.js";

/** RequestGroupId: a fresh uuid@domain, reserved until `expires_at`. */
export async function requestGroupId(
  deps: DsDeps,
  _request: delivery.RequestGroupIdRequest,
): Promise<delivery.RequestGroupIdResponse> {
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
