import type { auth } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import { NotFoundError } from "@phoenix/runtime/errors";
import { unary } from "@phoenix/runtime/grpc";
import type { AuthContext } from "../context.js";
import { checkLocalDomain, parseHandleHash } from "../domain/ids.js";
import { takePackage } from "../store/connection-packages.js";
import { findLiveHandle } from "../store/handles.js";
import { limitCaller } from "./rate-limit.js";

/** GetHandleConnectionPackage: one package of a live handle (consumed unless last resort). */
export function getHandleConnectionPackage(ctx: AuthContext) {
  return unary<auth.GetHandleConnectionPackageRequest, auth.GetHandleConnectionPackageResponse>(
    async (request, call) => {
      limitCaller(ctx, ctx.limits.packageFetch, call);
      const hash = parseHandleHash(request.handleHash, "handle_hash");
      checkLocalDomain(request.domain, ctx.config.AS_DOMAIN, "domain");
      const now = ctx.now();
      const connectionPackage = await transaction(ctx.db, async (tx) => {
        if (!(await findLiveHandle(tx, hash, now))) throw new NotFoundError("no such handle, or it expired");
        const pkg = await takePackage(tx, { handleHash: hash }, now);
        if (!pkg) throw new NotFoundError("the handle has no connection package");
        return pkg;
      });
      return { connectionPackage };
    },
  );
}
