import { randomBytes } from "@phoenix/crypto";
import { type auth, common } from "@phoenix/proto";
import type { CallContext } from "@phoenix/runtime/grpc";
import type { AuthContext } from "../context.js";
import { malformed } from "../domain/errors.js";
import { parseUserId } from "../domain/ids.js";
import { checkSize, credentialIdentifier, OpaqueSizes, recordHash } from "../domain/opaque.js";
import { findPasswordRecord, insertLogin } from "../store/passwords.js";
import { limitCaller, limitTarget } from "./rate-limit.js";

/** Length of a login id. */
export const LOGIN_ID_LENGTH = 16;

/**
 * StartPasswordLogin (OPAQUE KE1 → KE2). Each call is one online guess at a password, so it is
 * charged to the caller and to the user id before anything else, whether the user exists or not.
 * A user without a password (or no such user) is answered from the fake record, and its login is
 * kept like any other: nothing the caller sees, here or at the finish, tells the two apart.
 */
export async function startPasswordLogin(
  ctx: AuthContext,
  request: auth.StartPasswordLoginRequest,
  call: CallContext,
): Promise<auth.StartPasswordLoginResponse> {
  await limitCaller(ctx, ctx.limits.passwordLogin, call);
  const userId = parseUserId(request.userId, "user_id");
  if (userId.domain !== ctx.config.AS_DOMAIN) {
    throw malformed(
      "user_id.domain",
      `a password login is made at the user's own homeserver, not at ${ctx.config.AS_DOMAIN}`,
      common.ErrorReason.ERROR_REASON_WRONG_DOMAIN,
    );
  }
  // A malformed request costs the user's budget nothing.
  const credentialRequest = checkSize(
    request.credentialRequest,
    OpaqueSizes.credentialRequest,
    "credential_request",
  );
  await limitTarget(ctx, ctx.limits.passwordLoginPerUser, "password-login", userId.uuid);
  const record = await findPasswordRecord(ctx.db, userId.uuid);
  const { response, serverState } = ctx.passwords.server.startLogin(
    credentialIdentifier(userId.uuid, userId.domain),
    record,
    credentialRequest,
    "credential_request",
  );
  const now = ctx.now();
  const loginId = randomBytes(LOGIN_ID_LENGTH);
  const sealed = ctx.passwords.sealLoginState(loginId, {
    userUuid: userId.uuid,
    recordHash: record === undefined ? undefined : recordHash(record),
    serverState,
  });
  await insertLogin(ctx.db, loginId, sealed, new Date(now + ctx.config.AS_PASSWORD_LOGIN_TIMEOUT));
  ctx.log.info(
    { rpc: "StartPasswordLogin", user: ctx.passwords.auditTag(userId.uuid) },
    "password login attempt",
  );
  return { loginId, credentialResponse: response };
}
