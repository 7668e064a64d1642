import type { auth } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import { NotFoundError } from "@phoenix/runtime/errors";
import type { AuthContext } from "../context.js";
import { parseHandleHash } from "../domain/ids.js";
import { takePackage } from "../store/connection-packages.js";
import { findLiveHandle } from "../store/handles.js";
import { limitTarget } from "./rate-limit.js";

/** GetHandleConnectionPackage: one package of a live handle, consumed unless last resort (federated by `domain`). */
export async function getHandleConnectionPackage(
  ctx: AuthContext,
  request: auth.GetHandleConnectionPackageRequest,
): Promise<auth.GetHandleConnectionPackageResponse> {
  const hash = parseHandleHash(request.handleHash, "handle_hash");
  await limitTarget(ctx, ctx.limits.packageFetchPerTarget, "handle", hash);
  const now = ctx.now();
  const connectionPackage = await transaction(ctx.db, async (tx) => {
    if (!(await findLiveHandle(tx, hash, now))) throw new NotFoundError("no such handle, or it expired");
    const pkg = await takePackage(tx, { handleHash: hash }, now);
    if (!pkg) throw new NotFoundError("the handle has no connection package");
    return pkg;
  });
  return { connectionPackage };
}
