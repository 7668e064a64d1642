import { constantTimeEqual } from "@phoenix/crypto";
import { auth, common } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import { AlreadyExistsError, PermissionDeniedError } from "@phoenix/runtime/errors";
import type { CallContext } from "@phoenix/runtime/grpc";
import { authenticateSignedRequest } from "@phoenix/runtime/signed-request";
import { registrationMode, resolveInviteCode } from "../admin/registration-policy.js";
import type { AuthContext } from "../context.js";
import { hourFloor, monthOf } from "../domain/coarse-time.js";
import { parseQueueEncryptionKey } from "../domain/connection-queue.js";
import { checkClientCsr, signClientCredential } from "../domain/csr.js";
import { malformed, reasonDetail, tooLarge } from "../domain/errors.js";
import { parseClientId } from "../domain/ids.js";
import type { InviteCode } from "../domain/invite-codes.js";
import { Limits } from "../domain/limits.js";
import { profileKeyIndex } from "../domain/profile.js";
import { checkSenderKind } from "../domain/request-header.js";
import { insertClient } from "../store/clients.js";
import { consumeInviteCode } from "../store/invite-codes.js";
import { insertUser, putProfile } from "../store/users.js";
import { clientKeyBytes, replayScope, requestPolicy } from "./authenticate.js";
import { createQueueFor } from "./create-queue.js";
import { limitCaller } from "./rate-limit.js";

const Reason = common.ErrorReason;

function registrationClosed(message: string) {
  return new PermissionDeniedError(message, {
    details: [reasonDetail(Reason.ERROR_REASON_REGISTRATION_CLOSED)],
  });
}

/**
 * Throws PERMISSION_DENIED unless the registration mode in force (admin SetRegistration, else
 * AS_REGISTRATION) lets this registration in; returns the invite code it uses (to be consumed in
 * the registration transaction), if the AS is invite-only.
 */
async function checkRegistrationGate(ctx: AuthContext, inviteCode: string): Promise<InviteCode | undefined> {
  const { mode } = await registrationMode(ctx, ctx.db);
  if (mode === "open") return undefined;
  if (mode === "closed") throw registrationClosed("registration is disabled on this homeserver");
  if (inviteCode === "") throw registrationClosed("registration requires an invite code");
  const code = await resolveInviteCode(ctx, ctx.db, inviteCode);
  if (code === "revoked") throw registrationClosed("the invite code has been revoked");
  if (code === "unknown") throw registrationClosed("the invite code is not valid");
  return code;
}

/**
 * RegisterUser: proof of possession of the CSR key, registration gate, then the user, its profile,
 * its first client and that client's connection queue in one transaction.
 */
export async function registerUser(
  ctx: AuthContext,
  request: auth.RegisterUserRequest,
  call: CallContext,
): Promise<auth.RegisterUserResponse> {
  await limitCaller(ctx, ctx.limits.register, call);
  const now = ctx.now();
  const {
    tbs,
    signer: registering,
    claim,
  } = await authenticateSignedRequest(
    requestPolicy(ctx, now),
    { signed: request.signed, type: auth.RegisterUserTbs, method: auth.AuthServiceService.registerUser },
    (tbs, header) => {
      checkSenderKind(header, "client");
      if (tbs.inviteCode.length > Limits.inviteCode)
        throw tooLarge("tbs.invite_code", Limits.inviteCode, tbs.inviteCode.length);
      return csrSigner(ctx, tbs.clientCsr, header, now);
    },
  );
  const { csr, client } = registering;
  const invite = await checkRegistrationGate(ctx, tbs.inviteCode);
  const keyIndex = profileKeyIndex(tbs.encryptedUserProfile, "tbs.encrypted_user_profile");
  const queueKey = parseQueueEncryptionKey(
    tbs.connectionQueueEncryptionKey,
    "tbs.connection_queue_encryption_key",
  );
  const signer = await ctx.keyring.currentSigner();
  const credential = signClientCredential(csr, signer, "tbs.client_csr");
  const { userUuid } = client;

  await transaction(ctx.db, async (tx) => {
    await claim(tx);
    if (!(await insertUser(tx, userUuid))) throw new AlreadyExistsError("the user id is taken");
    if (invite && !(await consumeInviteCode(tx, invite.hash, invite.maxUses))) {
      throw registrationClosed("the invite code has been used up");
    }
    await putProfile(tx, userUuid, "current", keyIndex, tbs.encryptedUserProfile);
    await insertClient(tx, {
      ...client,
      credential: credential.bytes,
      signatureKey: credential.verifyingKey.bytes,
      credentialNotAfter: hourFloor(credential.expiration.notAfter),
      createdAt: monthOf(now),
      lastActiveAt: monthOf(now),
    });
    await createQueueFor(tx, { client }, queueKey);
  });
  ctx.log.info({ rpc: "RegisterUser" }, "user registered");
  return { clientCredential: credential.bytes };
}

/** The CSR bounds from the configuration. */
export function csrPolicy(ctx: AuthContext) {
  return {
    domain: ctx.config.AS_DOMAIN,
    clientMaxLifetimeMs: ctx.config.AS_CLIENT_CREDENTIAL_MAX_LIFETIME,
    maxFutureSkewMs: ctx.window.maxFutureSkewMs,
  };
}

/**
 * The signer of a request proved by the key of the client CSR it carries (RegisterUser,
 * AddClientWithGrant): the CSR checked, and the header's sender must be the client id it names.
 */
export function csrSigner(
  ctx: AuthContext,
  clientCsr: Uint8Array,
  header: common.RequestHeader,
  now: number,
) {
  const csr = checkClientCsr(clientCsr, "tbs.client_csr", csrPolicy(ctx), now);
  const sender =
    header.sender?.$case === "client"
      ? parseClientId(header.sender.value, "tbs.header.sender.client")
      : undefined;
  if (
    !sender ||
    sender.userId.domain !== csr.clientId.userId.domain ||
    !constantTimeEqual(sender.userId.uuid, csr.clientId.userId.uuid) ||
    !constantTimeEqual(sender.clientUuid, csr.clientId.clientUuid)
  ) {
    throw malformed("tbs.header.sender", "must be the client id of the CSR");
  }
  const client = { userUuid: csr.clientId.userId.uuid, clientUuid: csr.clientId.clientUuid };
  return {
    signer: "client" as const,
    key: [csr.verifyingKey],
    replayScope: replayScope("client", clientKeyBytes(client)),
    csr,
    client,
  };
}
