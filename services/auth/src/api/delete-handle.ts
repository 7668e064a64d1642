import { auth } from "@phoenix/proto";
import type { AuthContext } from "../context.js";
import { deleteHandle as deleteHandleRow } from "../store/handles.js";
import { asHandle } from "./authenticate.js";

/** DeleteHandle: the handle, its packages and its queue go; the handle is free again. */
export async function deleteHandle(
  ctx: AuthContext,
  request: auth.DeleteHandleRequest,
): Promise<auth.DeleteHandleResponse> {
  await asHandle(
    ctx,
    request,
    auth.DeleteHandleTbs,
    auth.AuthServiceService.deleteHandle,
    async ({ handle }, tx) => {
      await deleteHandleRow(tx, handle.handleHash);
    },
  );
  return {};
}
