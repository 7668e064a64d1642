import type { auth } from "@phoenix/proto";
import { unary } from "@phoenix/runtime/grpc";
import type { AuthContext } from "../context.js";
import { checkLocalDomain } from "../domain/ids.js";

/** GetAsCredentials: the valid AS roots and intermediates and the revoked fingerprints (public). */
export function getAsCredentials(ctx: AuthContext) {
  return unary<auth.GetAsCredentialsRequest, auth.GetAsCredentialsResponse>(async (request) => {
    checkLocalDomain(request.domain, ctx.config.AS_DOMAIN, "domain");
    const credentials = await ctx.keyring.publicCredentials();
    return {
      domain: ctx.config.AS_DOMAIN,
      asCredentials: credentials.roots,
      asIntermediateCredentials: credentials.intermediates,
      revokedFingerprints: credentials.revoked,
    };
  });
}
