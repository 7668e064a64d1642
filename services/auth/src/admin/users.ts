// Admin RPCs on users and clients: LookupUser, ListUsers, SuspendUser, UnsuspendUser, DeleteUser,
// ListClients, RevokeClientCredential.
import { ClientCredential, formatClientId, formatUserId, handleHash, type UserId } from "@phoenix/crypto";
import { admin, type common } from "@phoenix/proto";
import type { Database } from "@phoenix/runtime/db";
import { NotFoundError } from "@phoenix/runtime/errors";
import { malformed } from "../domain/errors.js";
import { validateHandle } from "../domain/handles.js";
import { parseClientId, parseUserId } from "../domain/ids.js";
import { findUserOverview, listUserOverviews, setSuspended, type UserOverview } from "../store/admin.js";
import { revokeFingerprint } from "../store/as-credentials.js";
import { findClient, listClients as listClientRows } from "../store/clients.js";
import { findLiveHandle } from "../store/handles.js";
import { deleteUser as deleteUserRow, userExists } from "../store/users.js";
import { type AdminContext, asOperator } from "./operator-call.js";

const S = admin.AuthAdminServiceService;

/** A user id of this domain from a request; another domain's is INVALID_ARGUMENT. */
function localUser(ctx: AdminContext, id: common.UserId | undefined, field: string): UserId {
  const userId = parseUserId(id, field);
  if (userId.domain !== ctx.config.AS_DOMAIN)
    throw malformed(`${field}.domain`, `is not this homeserver's domain (${ctx.config.AS_DOMAIN})`);
  return userId;
}

/** The audit target of a request naming a user (as given, unvalidated). */
function userTarget(id: common.UserId | undefined): string {
  if (!id) return "user (none)";
  try {
    return `user ${formatUserId(id)}`;
  } catch {
    return "user (malformed)";
  }
}

function summary(ctx: AdminContext, row: UserOverview): admin.UserSummary {
  return {
    userId: { uuid: row.userUuid, domain: ctx.config.AS_DOMAIN },
    clientCount: row.clientCount,
    suspended: row.suspended,
  };
}

async function existingUser(db: Database, userId: UserId): Promise<void> {
  if (!(await userExists(db, userId.uuid))) throw new NotFoundError("no such user");
}

/** LookupUser: by user id, or a handle hashed as the AS stores it. */
export function lookupUser(
  ctx: AdminContext,
  request: admin.LookupUserRequest,
): Promise<admin.LookupUserResponse> {
  return asOperator(
    ctx,
    request,
    admin.LookupUserTbs,
    S.lookupUser,
    // A handle is audited without its plaintext: the AS keeps none anywhere.
    (tbs) => (tbs.target?.$case === "handle" ? "handle" : userTarget(tbs.target?.value)),
    async ({ tbs, now }, db) => {
      const target = tbs.target;
      if (target === undefined) throw malformed("tbs.target", "missing: give a user id or a handle");
      if (target.$case === "handle") {
        validateHandle(target.value);
        const handle = await findLiveHandle(db, handleHash(target.value), now);
        if (!handle) throw new NotFoundError("no such handle, or it expired");
        return {
          result: { $case: "handle", value: { handleHash: handle.handleHash, expiresAt: handle.expiresAt } },
        };
      }
      const userId = localUser(ctx, target.value, "tbs.user_id");
      const row = await findUserOverview(db, userId.uuid);
      if (!row) throw new NotFoundError("no such user");
      return { result: { $case: "user", value: summary(ctx, row) } };
    },
  );
}

const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;

/** ListUsers: by user uuid; the page token is the last uuid of the previous page (hex). */
export function listUsers(
  ctx: AdminContext,
  request: admin.ListUsersRequest,
): Promise<admin.ListUsersResponse> {
  return asOperator(
    ctx,
    request,
    admin.ListUsersTbs,
    S.listUsers,
    (tbs) => (tbs.pageToken === "" ? "users" : `users after ${tbs.pageToken.slice(0, 32)}`),
    async ({ tbs }, db) => {
      if (tbs.pageToken !== "" && !/^[0-9a-f]{32}$/.test(tbs.pageToken))
        throw malformed("tbs.page_token", "is not a token ListUsers returned");
      const after = tbs.pageToken === "" ? undefined : new Uint8Array(Buffer.from(tbs.pageToken, "hex"));
      const size = Math.min(tbs.pageSize === 0 ? DEFAULT_PAGE : tbs.pageSize, MAX_PAGE);
      // One more than the page: tells whether another page follows.
      const rows = await listUserOverviews(db, after, size + 1);
      const page = rows.slice(0, size);
      const last = page[page.length - 1];
      return {
        users: page.map((row) => summary(ctx, row)),
        nextPageToken: rows.length > size && last ? Buffer.from(last.userUuid).toString("hex") : "",
      };
    },
  );
}

/** SuspendUser / UnsuspendUser. */
function setUserSuspended(
  ctx: AdminContext,
  request: admin.SuspendUserRequest,
  suspended: boolean,
): Promise<Record<string, never>> {
  const [type, method] = suspended
    ? [admin.SuspendUserTbs, S.suspendUser]
    : [admin.UnsuspendUserTbs, S.unsuspendUser];
  return asOperator(
    ctx,
    request,
    type,
    method,
    (tbs) => userTarget(tbs.userId),
    async ({ tbs }, db) => {
      const userId = localUser(ctx, tbs.userId, "tbs.user_id");
      await existingUser(db, userId);
      await setSuspended(db, userId.uuid, suspended);
      return {};
    },
  );
}

export function suspendUser(ctx: AdminContext, request: admin.SuspendUserRequest) {
  return setUserSuspended(ctx, request, true);
}

export function unsuspendUser(ctx: AdminContext, request: admin.UnsuspendUserRequest) {
  return setUserSuspended(ctx, request, false);
}

/**
 * DeleteUser: the same statement as the user's own DeleteUser (the user row; its clients,
 * profiles, packages and connection queues by cascade). Telling its groups is the clients' part
 * of the protocol (their members remove the departed clients' leaves); the QS records and the DS
 * leaves of its clients expire by inactivity.
 */
export function deleteUser(
  ctx: AdminContext,
  request: admin.DeleteUserRequest,
): Promise<admin.DeleteUserResponse> {
  return asOperator(
    ctx,
    request,
    admin.DeleteUserTbs,
    S.deleteUser,
    (tbs) => userTarget(tbs.userId),
    async ({ tbs }, db) => {
      const userId = localUser(ctx, tbs.userId, "tbs.user_id");
      if (!(await deleteUserRow(db, userId.uuid))) throw new NotFoundError("no such user");
      return {};
    },
  );
}

/** ListClients: a user's clients with their credential's fingerprint and standing. */
export function listClients(
  ctx: AdminContext,
  request: admin.ListClientsRequest,
): Promise<admin.ListClientsResponse> {
  return asOperator(
    ctx,
    request,
    admin.ListClientsTbs,
    S.listClients,
    (tbs) => userTarget(tbs.userId),
    async ({ tbs }, db) => {
      const userId = localUser(ctx, tbs.userId, "tbs.user_id");
      await existingUser(db, userId);
      const rows = await listClientRows(db, userId.uuid);
      const clients: admin.ClientSummary[] = [];
      for (const row of rows) {
        const credential = ClientCredential.decode(row.credential);
        clients.push({
          clientId: {
            user: { uuid: row.userUuid, domain: ctx.config.AS_DOMAIN },
            clientUuid: row.clientUuid,
          },
          credentialFingerprint: credential.fingerprint,
          credentialNotAfter: row.credentialNotAfter,
          createdAt: row.createdAt,
          lastActiveAt: row.lastActiveAt,
          revoked: (await ctx.keyring.revocationOf(db, credential)) !== undefined,
        });
      }
      return { clients };
    },
  );
}

/** RevokeClientCredential: the client's current credential onto the revocation list. */
export function revokeClientCredential(
  ctx: AdminContext,
  request: admin.RevokeClientCredentialRequest,
): Promise<admin.RevokeClientCredentialResponse> {
  return asOperator(
    ctx,
    request,
    admin.RevokeClientCredentialTbs,
    S.revokeClientCredential,
    (tbs) => {
      try {
        return `client ${formatClientId(parseClientId(tbs.clientId, "tbs.client_id"))}`;
      } catch {
        return "client (malformed)";
      }
    },
    async ({ tbs, now }, db) => {
      const clientId = parseClientId(tbs.clientId, "tbs.client_id");
      if (clientId.userId.domain !== ctx.config.AS_DOMAIN)
        throw malformed(
          "tbs.client_id.user.domain",
          `is not this homeserver's domain (${ctx.config.AS_DOMAIN})`,
        );
      const row = await findClient(db, { userUuid: clientId.userId.uuid, clientUuid: clientId.clientUuid });
      if (!row) throw new NotFoundError("no such client");
      const { fingerprint } = ClientCredential.decode(row.credential);
      await revokeFingerprint(db, fingerprint, now);
      return { fingerprint };
    },
  );
}
