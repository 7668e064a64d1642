// Who may register, as RegisterUser checks it: the mode an operator set at runtime (admin
// SetRegistration) or AS_REGISTRATION, and invite codes created through the admin API or
// configured in AS_INVITE_CODES (minus the ones an operator revoked).
import { sha256, utf8 } from "@phoenix/crypto";
import type { Database } from "@phoenix/runtime/db";
import type { AuthContext } from "../context.js";
import { type InviteCode, matchInviteCode } from "../domain/invite-codes.js";
import { findInviteCode, getSetting } from "../store/admin.js";

/** The registration modes (AS_REGISTRATION's values). */
export type RegistrationMode = "open" | "invite" | "closed";

/** The name of the runtime setting in `admin_settings`. */
export const REGISTRATION_SETTING = "registration";

function isMode(value: string | undefined): value is RegistrationMode {
  return value === "open" || value === "invite" || value === "closed";
}

/** The mode in force: the stored one, else AS_REGISTRATION; `fromConfig` tells which. */
export async function registrationMode(
  ctx: AuthContext,
  db: Database,
): Promise<{ mode: RegistrationMode; fromConfig: boolean }> {
  const stored = await getSetting(db, REGISTRATION_SETTING);
  return isMode(stored)
    ? { mode: stored, fromConfig: false }
    : { mode: ctx.config.AS_REGISTRATION, fromConfig: true };
}

/** Why an invite code does not admit a registration. */
export type InviteRefusal = "unknown" | "revoked";

/**
 * The invite code `given` names: a code created through the admin API (looked up by its SHA-256,
 * the only form stored), else one of AS_INVITE_CODES; refused when unknown or revoked.
 */
export async function resolveInviteCode(
  ctx: AuthContext,
  db: Database,
  given: string,
): Promise<InviteCode | InviteRefusal> {
  const hash = sha256(utf8(given));
  const stored = await findInviteCode(db, hash);
  if (stored?.revoked) return "revoked";
  if (stored && !stored.fromConfig) return { code: utf8(given), hash, maxUses: stored.maxUses };
  return matchInviteCode(ctx.inviteCodes, given) ?? "unknown";
}
