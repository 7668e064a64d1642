import { bytesEqual } from "@phoenix/crypto";
import { auth } from "@phoenix/proto";
import { PermissionDeniedError } from "@phoenix/runtime/errors";
import type { AuthContext } from "../context.js";
import { parseUserId } from "../domain/ids.js";
import { listClients as listClientRows } from "../store/clients.js";
import { asClient } from "./authenticate.js";

/** ListClients: every client of the signer's user with its credential. */
export async function listClients(
  ctx: AuthContext,
  request: auth.ListClientsRequest,
): Promise<auth.ListClientsResponse> {
  const rows = await asClient(
    ctx,
    request,
    auth.ListClientsTbs,
    auth.AuthServiceService.listClients,
    async ({ tbs, clientKey }, tx) => {
      const userId = parseUserId(tbs.userId, "tbs.user_id");
      if (userId.domain !== ctx.config.AS_DOMAIN || !bytesEqual(userId.uuid, clientKey.userUuid)) {
        throw new PermissionDeniedError("user_id is not the signer's user");
      }
      return listClientRows(tx, clientKey.userUuid);
    },
  );
  const user = { uuid: rows[0]?.userUuid ?? new Uint8Array(16), domain: ctx.config.AS_DOMAIN };
  return {
    clients: rows.map((row) => ({
      clientId: { user, clientUuid: row.clientUuid },
      clientCredential: row.credential,
      createdAt: row.createdAt,
      lastActiveAt: row.lastActiveAt,
    })),
  };
}
