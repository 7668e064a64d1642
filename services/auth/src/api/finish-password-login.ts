import { randomBytes } from "@phoenix/crypto";
import { type auth, common } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import type { AuthContext } from "../context.js";
import { GRANT_LENGTH, grantHash, sealGrantExpiry } from "../domain/add-client-grant.js";
import { hourCeil } from "../domain/coarse-time.js";
import { unauthenticated } from "../domain/errors.js";
import { checkSize, OpaqueSizes, startedAgainst } from "../domain/opaque.js";
import { findPasswordRecord, insertGrant, takeLogin } from "../store/passwords.js";
import { LOGIN_ID_LENGTH } from "./start-password-login.js";

/** Why a finish failed, for the audit line only: the caller gets one answer for all of them. */
type LoginFailure = "unknown or timed-out login" | "wrong password" | "no password" | "password replaced";

/**
 * The one refusal of every failed finish, so the caller cannot tell a wrong password from a user
 * without a password or no such user.
 */
function loginFailed() {
  return unauthenticated(
    "password login failed (wrong password, unknown user, or the login is unknown, used or timed out)",
    common.ErrorReason.ERROR_REASON_INVALID_CREDENTIAL,
  );
}

/**
 * FinishPasswordLogin (OPAQUE KE3): the first attempt uses the login up, right or wrong. When the
 * client's MAC verifies and the user's password is still the one the login started against, the
 * AS stores the hash of a fresh add-client grant and returns the grant. Every attempt is audited
 * as a log line with the user's audit tag (no password material, no OPAQUE message).
 */
export async function finishPasswordLogin(
  ctx: AuthContext,
  request: auth.FinishPasswordLoginRequest,
): Promise<auth.FinishPasswordLoginResponse> {
  const loginId = checkSize(request.loginId, LOGIN_ID_LENGTH, "login_id");
  const finalization = checkSize(
    request.credentialFinalization,
    OpaqueSizes.credentialFinalization,
    "credential_finalization",
  );
  const now = ctx.now();
  // Its own statement: a failed attempt below must not put the login back.
  const stored = await takeLogin(ctx.db, loginId, new Date(now));
  const state = stored && ctx.passwords.openLoginState(loginId, stored);
  const fail = (failure: LoginFailure, userUuid?: Uint8Array) => {
    ctx.log.warn(
      { rpc: "FinishPasswordLogin", user: userUuid && ctx.passwords.auditTag(userUuid), failure },
      "password login failed",
    );
    return loginFailed();
  };
  if (!state) throw fail("unknown or timed-out login");
  // The MAC is checked for fake records too, so both paths do the same work.
  const verified = ctx.passwords.server.finishLogin(state.serverState, finalization);
  if (state.recordHash === undefined) throw fail("no password", state.userUuid);
  if (!verified) throw fail("wrong password", state.userUuid);

  const grant = randomBytes(GRANT_LENGTH);
  const expiresAt = now + ctx.config.AS_PASSWORD_GRANT_LIFETIME;
  const issued = await transaction(ctx.db, async (tx) => {
    // Locked until the grant is in: a password change (or user deletion) either comes first and
    // fails this login, or comes after and withdraws the grant.
    const record = await findPasswordRecord(tx, state.userUuid, true);
    if (!startedAgainst(state, record)) return false;
    await insertGrant(tx, {
      grantHash: grantHash(grant),
      userUuid: state.userUuid,
      expiresAt: hourCeil(expiresAt),
      sealedExpiry: sealGrantExpiry(grant, expiresAt),
    });
    return true;
  });
  if (!issued) throw fail("password replaced", state.userUuid);
  ctx.log.info(
    { rpc: "FinishPasswordLogin", user: ctx.passwords.auditTag(state.userUuid) },
    "password login succeeded: add-client grant issued",
  );
  return { addClientGrant: grant, grantExpiresAt: new Date(expiresAt) };
}
