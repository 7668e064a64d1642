import { auth } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import { NotFoundError } from "@phoenix/runtime/errors";
import type { AuthContext } from "../context.js";
import { hourCeil } from "../domain/coarse-time.js";
import { refreshHandle as refreshHandleRow } from "../store/handles.js";
import { authenticateHandle } from "./authenticate.js";

/** RefreshHandle: extends a live handle's expiry by the configured handle lifetime. */
export async function refreshHandle(
  ctx: AuthContext,
  request: auth.RefreshHandleRequest,
): Promise<auth.RefreshHandleResponse> {
  const now = ctx.now();
  const expiresAt = hourCeil(now + ctx.config.AS_HANDLE_LIFETIME);
  await transaction(ctx.db, async (tx) => {
    const { handle } = await authenticateHandle(
      ctx,
      tx,
      request.signed,
      auth.RefreshHandleTbs,
      auth.AuthServiceService.refreshHandle,
      now,
    );
    if (!(await refreshHandleRow(tx, handle.handleHash, now, expiresAt)))
      throw new NotFoundError("no such handle");
  });
  return { expiresAt };
}
