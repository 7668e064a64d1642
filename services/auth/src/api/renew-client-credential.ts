import { bytesEqual } from "@phoenix/crypto";
import { auth } from "@phoenix/proto";
import type { AuthContext } from "../context.js";
import { hourFloor } from "../domain/coarse-time.js";
import { checkClientCsr, signClientCredential } from "../domain/csr.js";
import { malformed } from "../domain/errors.js";
import { updateClientCredential } from "../store/clients.js";
import { asClient } from "./authenticate.js";
import { csrPolicy } from "./register-user.js";

/** RenewClientCredential: a fresh credential (same ClientId, same or new key) for the signer. */
export async function renewClientCredential(
  ctx: AuthContext,
  request: auth.RenewClientCredentialRequest,
): Promise<auth.RenewClientCredentialResponse> {
  const signer = await ctx.keyring.currentSigner();
  const credential = await asClient(
    ctx,
    request,
    auth.RenewClientCredentialTbs,
    auth.AuthServiceService.renewClientCredential,
    async ({ tbs, clientKey, now }, tx) => {
      const csr = checkClientCsr(tbs.clientCsr, "tbs.client_csr", csrPolicy(ctx), now);
      if (
        !bytesEqual(csr.clientId.userId.uuid, clientKey.userUuid) ||
        !bytesEqual(csr.clientId.clientUuid, clientKey.clientUuid)
      ) {
        throw malformed("tbs.client_csr", "the CSR names another client");
      }
      const issued = signClientCredential(csr, signer, "tbs.client_csr");
      await updateClientCredential(tx, clientKey, {
        credential: issued.bytes,
        signatureKey: issued.verifyingKey.bytes,
        credentialNotAfter: hourFloor(issued.expiration.notAfter),
      });
      return issued;
    },
    // A client under a revoked intermediate may move to the new one; a revoked client may not.
    { allowRevokedSigner: true },
  );
  return { clientCredential: credential.bytes };
}
