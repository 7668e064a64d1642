import type { auth } from "@phoenix/proto";
import type { AuthContext } from "../context.js";

/**
 * GetAsCredentials: the valid AS roots and intermediates and the revoked fingerprints (public).
 * Another domain's come from the remote-credentials cache (routes.ts), fetched through the
 * federation gateway.
 */
export async function getAsCredentials(ctx: AuthContext): Promise<auth.GetAsCredentialsResponse> {
  const credentials = await ctx.keyring.publicCredentials();
  return {
    domain: ctx.config.AS_DOMAIN,
    asCredentials: credentials.roots,
    asIntermediateCredentials: credentials.intermediates,
    revokedFingerprints: credentials.revoked,
  };
}
