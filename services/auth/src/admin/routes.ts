// The AS admin RPCs bound to their handlers (served on the admin listener only).
import { admin } from "@phoenix/proto";
import { defineService, type ServiceRegistration, unary } from "@phoenix/runtime/grpc";
import { revokeIntermediate, rotateIntermediate } from "./credentials.js";
import type { AdminContext } from "./operator-call.js";
import {
  createInviteCode,
  getRegistration,
  listInviteCodes,
  revokeInviteCode,
  setRegistration,
} from "./registration.js";
import { getDomainStats } from "./stats.js";
import {
  deleteUser,
  listClients,
  listUsers,
  lookupUser,
  revokeClientCredential,
  suspendUser,
  unsuspendUser,
} from "./users.js";

/** phoenix.admin.v1.AuthAdminService on `ctx`. */
export function adminRoutes(ctx: AdminContext): ServiceRegistration {
  return defineService(admin.AuthAdminServiceService, {
    lookupUser: unary((request) => lookupUser(ctx, request)),
    listUsers: unary((request) => listUsers(ctx, request)),
    suspendUser: unary((request) => suspendUser(ctx, request)),
    unsuspendUser: unary((request) => unsuspendUser(ctx, request)),
    deleteUser: unary((request) => deleteUser(ctx, request)),
    listClients: unary((request) => listClients(ctx, request)),
    revokeClientCredential: unary((request) => revokeClientCredential(ctx, request)),
    rotateIntermediate: unary((request) => rotateIntermediate(ctx, request)),
    revokeIntermediate: unary((request) => revokeIntermediate(ctx, request)),
    getRegistration: unary((request) => getRegistration(ctx, request)),
    setRegistration: unary((request) => setRegistration(ctx, request)),
    createInviteCode: unary((request) => createInviteCode(ctx, request)),
    listInviteCodes: unary((request) => listInviteCodes(ctx, request)),
    revokeInviteCode: unary((request) => revokeInviteCode(ctx, request)),
    getDomainStats: unary((request) => getDomainStats(ctx, request)),
  });
}
