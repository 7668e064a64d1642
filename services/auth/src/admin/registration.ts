// Admin RPCs on registration: GetRegistration, SetRegistration, CreateInviteCode,
// ListInviteCodes, RevokeInviteCode.
import { randomBytes } from "node:crypto";
import { sha256, utf8 } from "@phoenix/crypto";
import { admin } from "@phoenix/proto";
import { AlreadyExistsError, NotFoundError } from "@phoenix/runtime/errors";
import { malformed, tooLarge } from "../domain/errors.js";
import { Limits } from "../domain/limits.js";
import {
  findInviteCode,
  type InviteCodeRow,
  insertInviteCode,
  inviteCodeUseCounts,
  listInviteCodeRows,
  putSetting,
  revokeInviteCode as revokeInviteCodeRow,
} from "../store/admin.js";
import { type AdminContext, asOperator } from "./operator-call.js";
import { REGISTRATION_SETTING, type RegistrationMode, registrationMode } from "./registration-policy.js";

const S = admin.AuthAdminServiceService;
const Mode = admin.RegistrationMode;

const TO_WIRE: Record<RegistrationMode, admin.RegistrationMode> = {
  open: Mode.REGISTRATION_MODE_OPEN,
  invite: Mode.REGISTRATION_MODE_INVITE,
  closed: Mode.REGISTRATION_MODE_CLOSED,
};

function fromWire(mode: admin.RegistrationMode): RegistrationMode | undefined {
  return (Object.keys(TO_WIRE) as RegistrationMode[]).find((name) => TO_WIRE[name] === mode);
}

/** GetRegistration. */
export function getRegistration(
  ctx: AdminContext,
  request: admin.GetRegistrationRequest,
): Promise<admin.GetRegistrationResponse> {
  return asOperator(
    ctx,
    request,
    admin.GetRegistrationTbs,
    S.getRegistration,
    () => "registration",
    async (_opened, db) => {
      const { mode, fromConfig } = await registrationMode(ctx, db);
      return { mode: TO_WIRE[mode], fromConfig };
    },
  );
}

/** SetRegistration: stored in admin_settings, read by every replica's RegisterUser. */
export function setRegistration(
  ctx: AdminContext,
  request: admin.SetRegistrationRequest,
): Promise<admin.SetRegistrationResponse> {
  return asOperator(
    ctx,
    request,
    admin.SetRegistrationTbs,
    S.setRegistration,
    (tbs) => `registration ${fromWire(tbs.mode) ?? "(unspecified)"}`,
    async ({ tbs }, db) => {
      const mode = fromWire(tbs.mode);
      if (mode === undefined) throw malformed("tbs.mode", "must be open, invite or closed");
      await putSetting(db, REGISTRATION_SETTING, mode);
      return {};
    },
  );
}

/** An invite code's id: the first 16 hex digits of its SHA-256. */
function inviteId(hash: Uint8Array): string {
  return Buffer.from(hash).toString("hex").slice(0, 16);
}

/** CreateInviteCode: a given or random code, stored by its SHA-256 only. */
export function createInviteCode(
  ctx: AdminContext,
  request: admin.CreateInviteCodeRequest,
): Promise<admin.CreateInviteCodeResponse> {
  return asOperator(
    ctx,
    request,
    admin.CreateInviteCodeTbs,
    S.createInviteCode,
    // The code is a secret: audited by its id only.
    (tbs) => (tbs.code === "" ? "invite (random)" : `invite ${inviteId(sha256(utf8(tbs.code)))}`),
    async ({ tbs }, db) => {
      const code = tbs.code === "" ? randomBytes(12).toString("base64url") : tbs.code;
      const bytes = utf8(code);
      if (bytes.length > Limits.inviteCode) throw tooLarge("tbs.code", Limits.inviteCode, bytes.length);
      const maxUses = tbs.maxUses === 0 ? 1 : tbs.maxUses;
      const hash = sha256(bytes);
      const configured = ctx.inviteCodes.some((c) => Buffer.from(c.hash).equals(hash));
      if (
        configured ||
        !(await insertInviteCode(db, { codeHash: hash, maxUses, fromConfig: false, revoked: false }))
      )
        throw new AlreadyExistsError("this invite code exists already");
      return {
        code,
        summary: { id: inviteId(hash), uses: 0, maxUses, fromConfig: false, revoked: false },
      };
    },
  );
}

/** ListInviteCodes: the created ones and AS_INVITE_CODES, with use counts. */
export function listInviteCodes(
  ctx: AdminContext,
  request: admin.ListInviteCodesRequest,
): Promise<admin.ListInviteCodesResponse> {
  return asOperator(
    ctx,
    request,
    admin.ListInviteCodesTbs,
    S.listInviteCodes,
    () => "invites",
    async (_opened, db) => {
      const [rows, uses] = await Promise.all([listInviteCodeRows(db), inviteCodeUseCounts(db)]);
      const hex = (hash: Uint8Array) => Buffer.from(hash).toString("hex");
      const revokedConfigured = new Set(rows.filter((r) => r.fromConfig).map((r) => hex(r.codeHash)));
      const configured = ctx.inviteCodes.map((c) => ({
        id: inviteId(c.hash),
        uses: uses.get(hex(c.hash)) ?? 0,
        maxUses: c.maxUses,
        fromConfig: true,
        revoked: revokedConfigured.has(hex(c.hash)),
      }));
      const created = rows
        .filter((r) => !r.fromConfig)
        .map((r) => ({
          id: inviteId(r.codeHash),
          uses: uses.get(hex(r.codeHash)) ?? 0,
          maxUses: r.maxUses,
          fromConfig: false,
          revoked: r.revoked,
        }));
      return { codes: [...configured, ...created] };
    },
  );
}

/** RevokeInviteCode: by id (a created code, or an AS_INVITE_CODES entry). */
export function revokeInviteCode(
  ctx: AdminContext,
  request: admin.RevokeInviteCodeRequest,
): Promise<admin.RevokeInviteCodeResponse> {
  return asOperator(
    ctx,
    request,
    admin.RevokeInviteCodeTbs,
    S.revokeInviteCode,
    (tbs) => `invite ${tbs.id.slice(0, 16)}`,
    async ({ tbs }, db) => {
      if (!/^[0-9a-f]{16}$/.test(tbs.id))
        throw malformed("tbs.id", "must be 16 hex digits (ListInviteCodes)");
      const configured = ctx.inviteCodes.find((c) => inviteId(c.hash) === tbs.id);
      let row: InviteCodeRow | undefined;
      if (configured) {
        row = (await findInviteCode(db, configured.hash)) ?? {
          codeHash: configured.hash,
          maxUses: configured.maxUses,
          fromConfig: true,
          revoked: true,
        };
      } else {
        row = (await listInviteCodeRows(db)).find((r) => !r.fromConfig && inviteId(r.codeHash) === tbs.id);
      }
      if (!row) throw new NotFoundError("no invite code with this id");
      await revokeInviteCodeRow(db, row);
      return {};
    },
  );
}
