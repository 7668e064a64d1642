import { constantTimeEqual } from "@phoenix/crypto";
import { auth, common } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import { PermissionDeniedError } from "@phoenix/runtime/errors";
import { authenticateSignedRequest } from "@phoenix/runtime/signed-request";
import type { AuthContext } from "../context.js";
import { GRANT_LENGTH, grantHash, openGrantExpiry } from "../domain/add-client-grant.js";
import { parseQueueEncryptionKey } from "../domain/connection-queue.js";
import { malformed, unauthenticated } from "../domain/errors.js";
import { checkSenderKind } from "../domain/request-header.js";
import { findUserOverview } from "../store/admin.js";
import { consumeGrant } from "../store/passwords.js";
import { issueClientCredential } from "./add-client.js";
import { requestPolicy } from "./authenticate.js";
import { csrSigner } from "./register-user.js";

const Reason = common.ErrorReason;

function grantRefused() {
  return unauthenticated(
    "the add-client grant is unknown, already used or expired",
    Reason.ERROR_REASON_INVALID_CREDENTIAL,
  );
}

/**
 * AddClientWithGrant: AddClient authorized by the add-client grant of a password login instead of
 * an existing client's signature. The request is signed with the new client's CSR key (proof of
 * possession, like RegisterUser), so the grant and the CSR travel bound together and a replayed
 * request is refused. The grant is consumed in the transaction that adds the client: it adds one
 * client at most, and a refused request (another user's CSR, too many clients) leaves it unused.
 */
export async function addClientWithGrant(
  ctx: AuthContext,
  request: auth.AddClientWithGrantRequest,
): Promise<auth.AddClientWithGrantResponse> {
  const now = ctx.now();
  const { tbs, signer, claim } = await authenticateSignedRequest(
    requestPolicy(ctx, now),
    {
      signed: request.signed,
      type: auth.AddClientWithGrantTbs,
      method: auth.AuthServiceService.addClientWithGrant,
    },
    (tbs, header) => {
      checkSenderKind(header, "client");
      if (tbs.addClientGrant.length !== GRANT_LENGTH) {
        throw malformed("tbs.add_client_grant", `must be ${GRANT_LENGTH} bytes`);
      }
      // The CSR's key proves the request, as in RegisterUser.
      return csrSigner(ctx, tbs.clientCsr, header, now);
    },
  );
  const { csr, client } = signer;
  const queueKey = parseQueueEncryptionKey(
    tbs.connectionQueueEncryptionKey,
    "tbs.connection_queue_encryption_key",
  );
  const credentialSigner = await ctx.keyring.currentSigner();

  const credential = await transaction(ctx.db, async (tx) => {
    await claim(tx);
    const grant = await consumeGrant(tx, grantHash(tbs.addClientGrant), new Date(now));
    const expiresAt = grant && openGrantExpiry(tbs.addClientGrant, grant.sealedExpiry);
    // Past its exact expiry (but not its hour): refused, and the row stays for the expiry job.
    if (!grant || expiresAt === undefined || expiresAt <= now) throw grantRefused();
    if (!constantTimeEqual(grant.userUuid, client.userUuid)) {
      throw new PermissionDeniedError("the CSR names another user than the add-client grant");
    }
    // The grant's foreign key keeps its user: the overview is there.
    const user = await findUserOverview(tx, client.userUuid);
    if (!user) throw grantRefused();
    if (user.suspended) throw new PermissionDeniedError("user suspended");
    return issueClientCredential(ctx, tx, {
      csr,
      client,
      queueKey,
      signer: credentialSigner,
      now,
      clientCount: user.clientCount,
    });
  });
  ctx.log.info(
    { rpc: "AddClientWithGrant", user: ctx.passwords.auditTag(client.userUuid) },
    "client added with a password login's grant",
  );
  return { clientCredential: credential.bytes };
}
