import { VerifyingKey } from "@phoenix/crypto";
import { auth } from "@phoenix/proto";
import type { AuthContext } from "../context.js";
import { checkPackages } from "../domain/connection-packages.js";
import { replacePackages } from "../store/connection-packages.js";
import { asHandle } from "./authenticate.js";

/** PublishHandleConnectionPackages: replaces a handle's packages (signed by the handle key). */
export async function publishHandleConnectionPackages(
  ctx: AuthContext,
  request: auth.PublishHandleConnectionPackagesRequest,
): Promise<auth.PublishHandleConnectionPackagesResponse> {
  await asHandle(
    ctx,
    request,
    auth.PublishHandleConnectionPackagesTbs,
    auth.AuthServiceService.publishHandleConnectionPackages,
    async ({ tbs, handle, now }, tx) => {
      const packages = checkPackages(
        tbs.packages,
        { kind: "handle", handleKey: VerifyingKey.fromBytes(handle.verifyingKey) },
        now,
        ctx.config.AS_CONNECTION_PACKAGE_LIFETIME,
      );
      await replacePackages(tx, { handleHash: handle.handleHash }, packages);
    },
  );
  return {};
}
