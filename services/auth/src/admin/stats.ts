// Admin GetDomainStats: counts only (no per-user data).
import { admin } from "@phoenix/proto";
import { domainCounts, inviteCodeUseCounts, listInviteCodeRows } from "../store/admin.js";
import { type AdminContext, asOperator } from "./operator-call.js";

/** GetDomainStats: what a copy of the AS database shows anyway, counted. */
export function getDomainStats(
  ctx: AdminContext,
  request: admin.GetDomainStatsRequest,
): Promise<admin.GetDomainStatsResponse> {
  return asOperator(
    ctx,
    request,
    admin.GetDomainStatsTbs,
    admin.AuthAdminServiceService.getDomainStats,
    () => "domain",
    async ({ now }, db) => {
      const [counts, rows, uses] = await Promise.all([
        domainCounts(db, new Date(now)),
        listInviteCodeRows(db),
        inviteCodeUseCounts(db),
      ]);
      const hex = (hash: Uint8Array) => Buffer.from(hash).toString("hex");
      const revoked = new Set(rows.filter((r) => r.revoked).map((r) => hex(r.codeHash)));
      const open = [
        ...ctx.inviteCodes.map((c) => ({ hash: c.hash, maxUses: c.maxUses })),
        ...rows.filter((r) => !r.fromConfig).map((r) => ({ hash: r.codeHash, maxUses: r.maxUses })),
      ].filter((c) => !revoked.has(hex(c.hash)) && (uses.get(hex(c.hash)) ?? 0) < c.maxUses).length;
      return {
        users: BigInt(counts.users),
        clients: BigInt(counts.clients),
        handles: BigInt(counts.handles),
        suspendedUsers: BigInt(counts.suspendedUsers),
        openInviteCodes: BigInt(open),
      };
    },
  );
}
