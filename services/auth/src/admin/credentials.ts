// Admin RPCs on the AS intermediate credential: RotateIntermediate, RevokeIntermediate.
import { admin } from "@phoenix/proto";
import { NotFoundError } from "@phoenix/runtime/errors";
import { malformed } from "../domain/errors.js";
import { findAsCredential } from "../store/as-credentials.js";
import { type AdminContext, asOperator } from "./operator-call.js";

const S = admin.AuthAdminServiceService;

/** RotateIntermediate: the keyring's operator rotation (the old intermediate stays valid). */
export function rotateIntermediate(
  ctx: AdminContext,
  request: admin.RotateIntermediateRequest,
): Promise<admin.RotateIntermediateResponse> {
  return asOperator(
    ctx,
    request,
    admin.RotateIntermediateTbs,
    S.rotateIntermediate,
    () => "intermediate",
    async () => {
      const created = await ctx.keyring.rotate();
      return { fingerprint: created.fingerprint, notAfter: new Date(created.expiration.notAfter) };
    },
    // The keyring takes its advisory lock in a transaction of its own.
    { transactional: false },
  );
}

/**
 * RevokeIntermediate: onto the revocation list through the keyring, which replaces a revoked
 * current signer; answers the fingerprint of the signer in force afterwards.
 */
export function revokeIntermediate(
  ctx: AdminContext,
  request: admin.RevokeIntermediateRequest,
): Promise<admin.RevokeIntermediateResponse> {
  return asOperator(
    ctx,
    request,
    admin.RevokeIntermediateTbs,
    S.revokeIntermediate,
    (tbs) => `intermediate ${Buffer.from(tbs.fingerprint).toString("hex").slice(0, 64)}`,
    async ({ tbs }, db) => {
      if (tbs.fingerprint.length !== 32) throw malformed("tbs.fingerprint", "must be 32 bytes");
      const row = await findAsCredential(db, tbs.fingerprint);
      if (row?.kind !== "intermediate") throw new NotFoundError("no AS intermediate with this fingerprint");
      await ctx.keyring.revoke(tbs.fingerprint);
      const current = await ctx.keyring.currentSigner();
      return { currentFingerprint: current.credential.fingerprint };
    },
    { transactional: false },
  );
}
