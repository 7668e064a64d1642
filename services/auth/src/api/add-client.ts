import { bytesEqual, type ClientCredential } from "@phoenix/crypto";
import { auth, common } from "@phoenix/proto";
import type { Database } from "@phoenix/runtime/db";
import { AlreadyExistsError } from "@phoenix/runtime/errors";
import type { AuthContext } from "../context.js";
import { hourFloor, monthOf } from "../domain/coarse-time.js";
import { parseQueueEncryptionKey } from "../domain/connection-queue.js";
import { checkClientCsr, signClientCredential } from "../domain/csr.js";
import { malformed, tooLarge } from "../domain/errors.js";
import { countClients, insertClient } from "../store/clients.js";
import { asClient } from "./authenticate.js";
import { createQueueFor } from "./create-queue.js";
import { csrPolicy } from "./register-user.js";

/** AddClient: an existing client of the user has a credential signed for a new client. */
export async function addClient(
  ctx: AuthContext,
  request: auth.AddClientRequest,
): Promise<auth.AddClientResponse> {
  const signer = await ctx.keyring.currentSigner();
  const credential: ClientCredential = await asClient(
    ctx,
    request,
    auth.AddClientTbs,
    auth.AuthServiceService.addClient,
    async ({ tbs, clientKey, now }, tx) => {
      const csr = checkClientCsr(tbs.clientCsr, "tbs.client_csr", csrPolicy(ctx), now);
      if (!bytesEqual(csr.clientId.userId.uuid, clientKey.userUuid)) {
        throw malformed("tbs.client_csr", "the CSR is for another user");
      }
      const queueKey = parseQueueEncryptionKey(
        tbs.connectionQueueEncryptionKey,
        "tbs.connection_queue_encryption_key",
      );
      const clientCount = await countClients(tx, clientKey.userUuid);
      const client = { userUuid: clientKey.userUuid, clientUuid: csr.clientId.clientUuid };
      return issueClientCredential(ctx, tx, { csr, client, queueKey, signer, now, clientCount });
    },
  );
  return { clientCredential: credential.bytes };
}

/**
 * What AddClient and AddClientWithGrant share inside their transaction, once the request is
 * authorized: the user's client quota (`clientCount` clients now), the credential signed for the
 * CSR, the client row and its connection queue. ALREADY_EXISTS when the client id is taken.
 */
export async function issueClientCredential(
  ctx: AuthContext,
  tx: Database,
  args: {
    csr: ReturnType<typeof checkClientCsr>;
    client: { userUuid: Uint8Array; clientUuid: Uint8Array };
    queueKey: ReturnType<typeof parseQueueEncryptionKey>;
    signer: Awaited<ReturnType<AuthContext["keyring"]["currentSigner"]>>;
    now: number;
    clientCount: number;
  },
): Promise<ClientCredential> {
  const { csr, client, queueKey, signer, now, clientCount } = args;
  if (clientCount >= ctx.config.AS_MAX_CLIENTS_PER_USER) {
    throw tooLarge(
      "clients per user",
      ctx.config.AS_MAX_CLIENTS_PER_USER,
      clientCount + 1,
      common.ErrorReason.ERROR_REASON_QUOTA,
    );
  }
  // Signed only once the request is authorized and within quota: a refused one costs no signature.
  const issued = signClientCredential(csr, signer, "tbs.client_csr");
  const inserted = await insertClient(tx, {
    ...client,
    credential: issued.bytes,
    signatureKey: issued.verifyingKey.bytes,
    credentialNotAfter: hourFloor(issued.expiration.notAfter),
    createdAt: monthOf(now),
    lastActiveAt: monthOf(now),
  });
  if (!inserted) throw new AlreadyExistsError("the client id is taken");
  await createQueueFor(tx, { client }, queueKey);
  return issued;
}
