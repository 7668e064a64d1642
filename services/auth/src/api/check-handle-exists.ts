import type { auth } from "@phoenix/proto";
import type { AuthContext } from "../context.js";
import { parseHandleHash } from "../domain/ids.js";
import { findLiveHandle } from "../store/handles.js";

/** CheckHandleExists: whether a handle is registered and not expired (public; federated by `domain`). */
export async function checkHandleExists(
  ctx: AuthContext,
  request: auth.CheckHandleExistsRequest,
): Promise<auth.CheckHandleExistsResponse> {
  const hash = parseHandleHash(request.handleHash, "handle_hash");
  return { exists: (await findLiveHandle(ctx.db, hash, ctx.now())) !== undefined };
}
