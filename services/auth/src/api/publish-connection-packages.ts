import { auth } from "@phoenix/proto";
import type { AuthContext } from "../context.js";
import { checkPackages } from "../domain/connection-packages.js";
import { replacePackages } from "../store/connection-packages.js";
import { asClient } from "./authenticate.js";

/** PublishConnectionPackages: replaces the signing client's packages. */
export async function publishConnectionPackages(
  ctx: AuthContext,
  request: auth.PublishConnectionPackagesRequest,
): Promise<auth.PublishConnectionPackagesResponse> {
  const verifier = await ctx.keyring.verifier();
  await asClient(
    ctx,
    request,
    auth.PublishConnectionPackagesTbs,
    auth.AuthServiceService.publishConnectionPackages,
    async ({ tbs, client, clientKey, now }, tx) => {
      const packages = checkPackages(
        tbs.packages,
        { kind: "client", client: clientKey, signatureKey: client.signatureKey, verifier },
        now,
        ctx.config.AS_CONNECTION_PACKAGE_LIFETIME,
      );
      await replacePackages(tx, { client: clientKey }, packages);
    },
  );
  return {};
}
