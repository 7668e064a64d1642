import type { auth } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import { NotFoundError } from "@phoenix/runtime/errors";
import type { AuthContext } from "../context.js";
import { parseUserId } from "../domain/ids.js";
import { listClients } from "../store/clients.js";
import { takePackage } from "../store/connection-packages.js";
import { limitTarget } from "./rate-limit.js";

/**
 * GetConnectionPackages: one package per client of a user (public; federated by user id).
 * Ordinary packages are consumed; a client's last-resort package is handed out when nothing else
 * is left and kept.
 */
export async function getConnectionPackages(
  ctx: AuthContext,
  request: auth.GetConnectionPackagesRequest,
): Promise<auth.GetConnectionPackagesResponse> {
  const userId = parseUserId(request.userId, "user_id");
  // Per target user too: many callers (addresses) together must not drain one user's packages.
  await limitTarget(ctx, ctx.limits.packageFetchPerTarget, "user", userId.uuid);
  const now = ctx.now();
  const packages = await transaction(ctx.db, async (tx) => {
    const clients = await listClients(tx, userId.uuid);
    if (clients.length === 0) throw new NotFoundError("no such user");
    const found: auth.ClientConnectionPackage[] = [];
    for (const client of clients) {
      const pkg = await takePackage(tx, { client }, now);
      if (pkg)
        found.push({ clientId: { user: userId, clientUuid: client.clientUuid }, connectionPackage: pkg });
    }
    return found;
  });
  return { packages };
}
