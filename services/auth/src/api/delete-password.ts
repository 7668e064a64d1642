import { auth } from "@phoenix/proto";
import { NotFoundError } from "@phoenix/runtime/errors";
import type { AuthContext } from "../context.js";
import { deleteGrantsOf, deletePasswordRecord } from "../store/passwords.js";
import { asClient } from "./authenticate.js";

/** DeletePassword: removes the signer's user's OPAQUE record and withdraws unused add-client grants. */
export async function deletePassword(
  ctx: AuthContext,
  request: auth.DeletePasswordRequest,
): Promise<auth.DeletePasswordResponse> {
  const userUuid = await asClient(
    ctx,
    request,
    auth.DeletePasswordTbs,
    auth.AuthServiceService.deletePassword,
    async ({ clientKey }, tx) => {
      if (!(await deletePasswordRecord(tx, clientKey.userUuid))) {
        throw new NotFoundError("the user has no account password");
      }
      await deleteGrantsOf(tx, clientKey.userUuid);
      return clientKey.userUuid;
    },
  );
  ctx.log.info({ rpc: "DeletePassword", user: ctx.passwords.auditTag(userUuid) }, "account password removed");
  return {};
}
