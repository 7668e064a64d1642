import { VerifyingKey } from "@phoenix/crypto";
import { auth } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import type { AuthContext } from "../context.js";
import { checkPackages } from "../domain/connection-packages.js";
import { replacePackages } from "../store/connection-packages.js";
import { authenticateHandle } from "./authenticate.js";

/** PublishHandleConnectionPackages: replaces a handle's packages (signed by the handle key). */
export async function publishHandleConnectionPackages(
  ctx: AuthContext,
  request: auth.PublishHandleConnectionPackagesRequest,
): Promise<auth.PublishHandleConnectionPackagesResponse> {
  const now = ctx.now();
  await transaction(ctx.db, async (tx) => {
    const { tbs, handle } = await authenticateHandle(
      ctx,
      tx,
      request.signed,
      auth.PublishHandleConnectionPackagesTbs,
      auth.AuthServiceService.publishHandleConnectionPackages,
      now,
    );
    const packages = checkPackages(
      tbs.packages,
      { kind: "handle", handleKey: VerifyingKey.fromBytes(handle.verifyingKey) },
      now,
      ctx.config.AS_CONNECTION_PACKAGE_LIFETIME,
    );
    await replacePackages(tx, { handleHash: handle.handleHash }, packages);
  });
  return {};
}
