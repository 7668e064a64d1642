import { auth } from "@phoenix/proto";
import { federatedUnary } from "@phoenix/runtime/federation";
import type { AuthContext } from "../context.js";
import { requestDomain } from "../domain/ids.js";

/**
 * GetAsCredentials: the valid AS roots and intermediates and the revoked fingerprints (public).
 * Another domain's come from the remote-credentials cache, fetched through the federation gateway.
 */
export function getAsCredentials(ctx: AuthContext) {
  return federatedUnary(
    auth.AuthServiceService.getAsCredentials,
    ctx.router,
    (request) => requestDomain(request.domain, "domain"),
    async () => {
      const credentials = await ctx.keyring.publicCredentials();
      return {
        domain: ctx.config.AS_DOMAIN,
        asCredentials: credentials.roots,
        asIntermediateCredentials: credentials.intermediates,
        revokedFingerprints: credentials.revoked,
      };
    },
    { remote: (domain, _request, call) => ctx.remoteCredentials.get(domain, call) },
  );
}
