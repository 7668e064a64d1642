import { bytesEqual } from "@phoenix/crypto";
import { auth } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import type { AuthContext } from "../context.js";
import { hourFloor } from "../domain/coarse-time.js";
import { checkClientCsr, signClientCredential } from "../domain/csr.js";
import { malformed } from "../domain/errors.js";
import { updateClientCredential } from "../store/clients.js";
import { authenticateClient } from "./authenticate.js";
import { csrPolicy } from "./register-user.js";

/** RenewClientCredential: a fresh credential (same ClientId, same or new key) for the signer. */
export async function renewClientCredential(
  ctx: AuthContext,
  request: auth.RenewClientCredentialRequest,
): Promise<auth.RenewClientCredentialResponse> {
  const now = ctx.now();
  const signer = await ctx.keyring.currentSigner();
  const credential = await transaction(ctx.db, async (tx) => {
    const { tbs, clientKey } = await authenticateClient(
      ctx,
      tx,
      request.signed,
      auth.RenewClientCredentialTbs,
      auth.AuthServiceService.renewClientCredential,
      now,
      // A client under a revoked intermediate may move to the new one; a revoked client may not.
      { allowRevokedSigner: true },
    );
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
  });
  return { clientCredential: credential.bytes };
}
