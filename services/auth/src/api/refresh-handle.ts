import { auth } from "@phoenix/proto";
import { NotFoundError } from "@phoenix/runtime/errors";
import type { AuthContext } from "../context.js";
import { hourCeil } from "../domain/coarse-time.js";
import { refreshHandle as refreshHandleRow } from "../store/handles.js";
import { asHandle } from "./authenticate.js";

/** RefreshHandle: extends a live handle's expiry by the configured handle lifetime. */
export async function refreshHandle(
  ctx: AuthContext,
  request: auth.RefreshHandleRequest,
): Promise<auth.RefreshHandleResponse> {
  const expiresAt = await asHandle(
    ctx,
    request,
    auth.RefreshHandleTbs,
    auth.AuthServiceService.refreshHandle,
    async ({ handle, now }, tx) => {
      const expiresAt = hourCeil(now + ctx.config.AS_HANDLE_LIFETIME);
      if (!(await refreshHandleRow(tx, handle.handleHash, now, expiresAt)))
        throw new NotFoundError("no such handle");
      return expiresAt;
    },
  );
  return { expiresAt };
}
