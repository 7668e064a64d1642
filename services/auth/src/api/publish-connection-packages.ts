import { auth } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import type { AuthContext } from "../context.js";
import { checkPackages } from "../domain/connection-packages.js";
import { replacePackages } from "../store/connection-packages.js";
import { authenticateClient } from "./authenticate.js";

/** PublishConnectionPackages: replaces the signing client's packages. */
export async function publishConnectionPackages(
  ctx: AuthContext,
  request: auth.PublishConnectionPackagesRequest,
): Promise<auth.PublishConnectionPackagesResponse> {
  const now = ctx.now();
  const verifier = await ctx.keyring.verifier();
  await transaction(ctx.db, async (tx) => {
    const { tbs, client, clientKey } = await authenticateClient(
      ctx,
      tx,
      request.signed,
      auth.PublishConnectionPackagesTbs,
      auth.AuthServiceService.publishConnectionPackages,
      now,
    );
    const packages = checkPackages(
      tbs.packages,
      { kind: "client", client: clientKey, signatureKey: client.signatureKey, verifier },
      now,
      ctx.config.AS_CONNECTION_PACKAGE_LIFETIME,
    );
    await replacePackages(tx, { client: clientKey }, packages);
  });
  return {};
}
