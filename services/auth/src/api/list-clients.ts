import { bytesEqual } from "@phoenix/crypto";
import { auth } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import { PermissionDeniedError } from "@phoenix/runtime/errors";
import type { AuthContext } from "../context.js";
import { parseUserId } from "../domain/ids.js";
import { listClients as listClientRows } from "../store/clients.js";
import { authenticateClient } from "./authenticate.js";

/** ListClients: every client of the signer's user with its credential. */
export async function listClients(
  ctx: AuthContext,
  request: auth.ListClientsRequest,
): Promise<auth.ListClientsResponse> {
  const now = ctx.now();
  const rows = await transaction(ctx.db, async (tx) => {
    const { tbs, clientKey } = await authenticateClient(
      ctx,
      tx,
      request.signed,
      auth.ListClientsTbs,
      auth.AuthServiceService.listClients,
      now,
    );
    const userId = parseUserId(tbs.userId, "tbs.user_id");
    if (userId.domain !== ctx.config.AS_DOMAIN || !bytesEqual(userId.uuid, clientKey.userUuid)) {
      throw new PermissionDeniedError("user_id is not the signer's user");
    }
    return listClientRows(tx, clientKey.userUuid);
  });
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
