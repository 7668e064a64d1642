import { bytesEqual } from "@phoenix/crypto";
import { auth } from "@phoenix/proto";
import { FailedPreconditionError, NotFoundError, PermissionDeniedError } from "@phoenix/runtime/errors";
import type { AuthContext } from "../context.js";
import { parseClientId } from "../domain/ids.js";
import { countClients, deleteClient as deleteClientRow, findClient } from "../store/clients.js";
import { asClient } from "./authenticate.js";

/** DeleteClient: removes one client of the signer's user with its packages and queue. */
export async function deleteClient(
  ctx: AuthContext,
  request: auth.DeleteClientRequest,
): Promise<auth.DeleteClientResponse> {
  await asClient(
    ctx,
    request,
    auth.DeleteClientTbs,
    auth.AuthServiceService.deleteClient,
    async ({ tbs, clientKey }, tx) => {
      const target = parseClientId(tbs.clientId, "tbs.client_id");
      if (
        target.userId.domain !== ctx.config.AS_DOMAIN ||
        !bytesEqual(target.userId.uuid, clientKey.userUuid)
      ) {
        throw new PermissionDeniedError("the client belongs to another user");
      }
      const key = { userUuid: target.userId.uuid, clientUuid: target.clientUuid };
      if (!(await findClient(tx, key, true))) throw new NotFoundError("no such client");
      if ((await countClients(tx, key.userUuid)) <= 1) {
        throw new FailedPreconditionError("this is the user's last client: use DeleteUser");
      }
      await deleteClientRow(tx, key);
    },
  );
  return {};
}
