import { auth } from "@phoenix/proto";
import type { AuthContext } from "../context.js";
import { credentialIdentifier } from "../domain/opaque.js";
import { asClient } from "./authenticate.js";

/**
 * StartPasswordRegistration: the OPRF evaluation of the client's blinded password under the key
 * the server setup derives for the signer's user. Stateless: nothing is stored until the finish.
 */
export async function startPasswordRegistration(
  ctx: AuthContext,
  request: auth.StartPasswordRegistrationRequest,
): Promise<auth.StartPasswordRegistrationResponse> {
  const registrationResponse = await asClient(
    ctx,
    request,
    auth.StartPasswordRegistrationTbs,
    auth.AuthServiceService.startPasswordRegistration,
    async ({ tbs, clientKey }) =>
      ctx.passwords.server.registrationResponse(
        credentialIdentifier(clientKey.userUuid, ctx.config.AS_DOMAIN),
        tbs.registrationRequest,
        "tbs.registration_request",
      ),
  );
  return { registrationResponse };
}
