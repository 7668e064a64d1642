import { auth } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import type { AuthContext } from "../context.js";
import { deleteHandle as deleteHandleRow } from "../store/handles.js";
import { authenticateHandle } from "./authenticate.js";

/** DeleteHandle: the handle, its packages and its queue go; the handle is free again. */
export async function deleteHandle(
  ctx: AuthContext,
  request: auth.DeleteHandleRequest,
): Promise<auth.DeleteHandleResponse> {
  const now = ctx.now();
  await transaction(ctx.db, async (tx) => {
    const { handle } = await authenticateHandle(
      ctx,
      tx,
      request.signed,
      auth.DeleteHandleTbs,
      auth.AuthServiceService.deleteHandle,
      now,
    );
    await deleteHandleRow(tx, handle.handleHash);
  });
  return {};
}
