// The AS commands of `phoenix-admin` (AuthAdminService): users, clients, intermediates,
// registration, invite codes, stats.
import { formatClientId, formatUserId, parseUserId, parseUuid, type UserId } from "@phoenix/crypto";
import { admin } from "@phoenix/proto";
import { AdminUsageError, type Command, need } from "./command.js";

const S = admin.AuthAdminServiceService;
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

function userIdArg(args: string[], index: number): UserId {
  const text = need(args, index, "the user id (uuid@domain)");
  try {
    return parseUserId(text);
  } catch {
    throw new AdminUsageError(`not a user id (uuid@domain): ${text}`);
  }
}

/** `clientUuid:userUuid@domain`, as `phoenix-admin clients list` prints it. */
function clientIdArg(args: string[], index: number) {
  const text = need(args, index, "the client id (client-uuid:user-uuid@domain)");
  const colon = text.indexOf(":");
  try {
    const user = parseUserId(text.slice(colon + 1));
    return { user, clientUuid: parseUuid(text.slice(0, colon)) };
  } catch {
    throw new AdminUsageError(`not a client id (client-uuid:user-uuid@domain): ${text}`);
  }
}

function wireUser(id: { uuid: Uint8Array; domain: string } | undefined): string {
  return id ? formatUserId(id) : "?";
}

const MODES: Record<string, admin.RegistrationMode> = {
  open: admin.RegistrationMode.REGISTRATION_MODE_OPEN,
  invite: admin.RegistrationMode.REGISTRATION_MODE_INVITE,
  closed: admin.RegistrationMode.REGISTRATION_MODE_CLOSED,
};
const modeName = (mode: admin.RegistrationMode) =>
  Object.entries(MODES).find(([, m]) => m === mode)?.[0] ?? "unspecified";

function userJson(user: admin.UserSummary) {
  return { userId: wireUser(user.userId), clients: user.clientCount, suspended: user.suspended };
}

function userLine(user: admin.UserSummary): string {
  const json = userJson(user);
  return `${json.userId}  clients=${json.clients}${json.suspended ? "  suspended" : ""}`;
}

function inviteJson(code: admin.InviteCodeSummary) {
  return { ...code };
}

function inviteLine(code: admin.InviteCodeSummary): string {
  const flags = [code.fromConfig ? "configured" : "", code.revoked ? "revoked" : ""].filter(Boolean);
  return `${code.id}  uses=${code.uses}/${code.maxUses}${flags.length > 0 ? `  ${flags.join(" ")}` : ""}`;
}

/** The AS commands by name. */
export const authCommands: Record<string, Command> = {
  "users lookup": {
    usage: "users lookup USER_ID | users lookup --handle HANDLE",
    summary: "show a user (clients, suspension), or whether a handle exists",
    options: {
      handle: { type: "string", description: "look a handle up instead (hashed as the AS stores it)" },
    },
    async run({ client, sign, args, values, print }) {
      const handle = typeof values.handle === "string" ? values.handle : undefined;
      const target: admin.LookupUserTbs["target"] =
        handle !== undefined
          ? { $case: "handle", value: handle }
          : { $case: "userId", value: userIdArg(args, 0) };
      const response = await client.lookupUser(await sign(admin.LookupUserTbs, S.lookupUser, { target }));
      const result = response.result;
      if (result?.$case === "handle") {
        const json = {
          handleHash: hex(result.value.handleHash),
          expiresAt: result.value.expiresAt?.toISOString(),
        };
        print(json, [`handle exists (hash ${json.handleHash.slice(0, 16)}…, expires ${json.expiresAt})`]);
      } else if (result?.$case === "user") {
        print(userJson(result.value), [userLine(result.value)]);
      }
    },
  },
  "users list": {
    usage: "users list [--page-size N] [--page-token TOKEN]",
    summary: "list users, one page at a time",
    options: {
      "page-size": { type: "string", description: "users per page (default 100, at most 1000)" },
      "page-token": { type: "string", description: "the token the previous page printed" },
    },
    async run({ client, sign, values, print }) {
      const size = values["page-size"] === undefined ? 0 : Number(values["page-size"]);
      if (!Number.isInteger(size) || size < 0)
        throw new AdminUsageError("--page-size must be a whole number");
      const response = await client.listUsers(
        await sign(admin.ListUsersTbs, S.listUsers, {
          pageSize: size,
          pageToken: typeof values["page-token"] === "string" ? values["page-token"] : "",
        }),
      );
      print({ users: response.users.map(userJson), nextPageToken: response.nextPageToken }, [
        ...response.users.map(userLine),
        ...(response.nextPageToken ? [`more: --page-token ${response.nextPageToken}`] : []),
      ]);
    },
  },
  "users suspend": {
    usage: "users suspend USER_ID",
    summary: "refuse every request of the user's clients until unsuspended",
    async run({ client, sign, args, print }) {
      const userId = userIdArg(args, 0);
      await client.suspendUser(await sign(admin.SuspendUserTbs, S.suspendUser, { userId }));
      print({ suspended: formatUserId(userId) }, [`suspended ${formatUserId(userId)}`]);
    },
  },
  "users unsuspend": {
    usage: "users unsuspend USER_ID",
    summary: "lift a user's suspension",
    async run({ client, sign, args, print }) {
      const userId = userIdArg(args, 0);
      await client.unsuspendUser(await sign(admin.UnsuspendUserTbs, S.unsuspendUser, { userId }));
      print({ unsuspended: formatUserId(userId) }, [`unsuspended ${formatUserId(userId)}`]);
    },
  },
  "users delete": {
    usage: "users delete USER_ID",
    summary: "delete a user as its own DeleteUser would (clients, credentials, queues)",
    async run({ client, sign, args, print }) {
      const userId = userIdArg(args, 0);
      await client.deleteUser(await sign(admin.DeleteUserTbs, S.deleteUser, { userId }));
      print({ deleted: formatUserId(userId) }, [`deleted ${formatUserId(userId)}`]);
    },
  },
  "clients list": {
    usage: "clients list USER_ID",
    summary: "list a user's clients and their credentials",
    async run({ client, sign, args, print }) {
      const userId = userIdArg(args, 0);
      const response = await client.listClients(await sign(admin.ListClientsTbs, S.listClients, { userId }));
      const rows = response.clients.map((c) => ({
        clientId: c.clientId?.user
          ? formatClientId({ clientUuid: c.clientId.clientUuid, userId: c.clientId.user })
          : "?",
        fingerprint: hex(c.credentialFingerprint),
        credentialNotAfter: c.credentialNotAfter?.toISOString(),
        createdMonth: c.createdAt?.toISOString().slice(0, 7),
        lastActiveMonth: c.lastActiveAt?.toISOString().slice(0, 7),
        revoked: c.revoked,
      }));
      print(
        { clients: rows },
        rows.map(
          (r) =>
            `${r.clientId}  fingerprint=${r.fingerprint.slice(0, 16)}…  until=${r.credentialNotAfter}  active=${r.lastActiveMonth}${r.revoked ? "  revoked" : ""}`,
        ),
      );
    },
  },
  "clients revoke": {
    usage: "clients revoke CLIENT_ID",
    summary: "revoke a client's credential (client-uuid:user-uuid@domain, as clients list prints it)",
    async run({ client, sign, args, print }) {
      const clientId = clientIdArg(args, 0);
      const response = await client.revokeClientCredential(
        await sign(admin.RevokeClientCredentialTbs, S.revokeClientCredential, { clientId }),
      );
      print({ revoked: hex(response.fingerprint) }, [`revoked credential ${hex(response.fingerprint)}`]);
    },
  },
  "intermediate rotate": {
    usage: "intermediate rotate",
    summary: "create a new AS intermediate credential now (the old one stays valid)",
    async run({ client, sign, print }) {
      const response = await client.rotateIntermediate(
        await sign(admin.RotateIntermediateTbs, S.rotateIntermediate, {}),
      );
      const json = { fingerprint: hex(response.fingerprint), notAfter: response.notAfter?.toISOString() };
      print(json, [`new intermediate ${json.fingerprint} (valid until ${json.notAfter})`]);
    },
  },
  "intermediate revoke": {
    usage: "intermediate revoke FINGERPRINT",
    summary: "revoke an AS intermediate credential (hex fingerprint); a new one replaces it",
    async run({ client, sign, args, print }) {
      const text = need(args, 0, "the intermediate's fingerprint (hex)");
      if (!/^[0-9a-f]{64}$/i.test(text)) throw new AdminUsageError("the fingerprint must be 64 hex digits");
      const response = await client.revokeIntermediate(
        await sign(admin.RevokeIntermediateTbs, S.revokeIntermediate, {
          fingerprint: new Uint8Array(Buffer.from(text, "hex")),
        }),
      );
      const json = { revoked: text.toLowerCase(), current: hex(response.currentFingerprint) };
      print(json, [`revoked ${json.revoked}; signing with ${json.current}`]);
    },
  },
  "registration get": {
    usage: "registration get",
    summary: "show who may register (open, invite or closed)",
    async run({ client, sign, print }) {
      const response = await client.getRegistration(
        await sign(admin.GetRegistrationTbs, S.getRegistration, {}),
      );
      const json = { mode: modeName(response.mode), fromConfig: response.fromConfig };
      print(json, [`${json.mode}${json.fromConfig ? " (AS_REGISTRATION)" : " (set at runtime)"}`]);
    },
  },
  "registration set": {
    usage: "registration set open|invite|closed",
    summary: "change who may register, at runtime",
    async run({ client, sign, args, print }) {
      const name = need(args, 0, "the mode (open, invite or closed)");
      const mode = MODES[name];
      if (mode === undefined) throw new AdminUsageError(`unknown mode "${name}" (open, invite or closed)`);
      await client.setRegistration(await sign(admin.SetRegistrationTbs, S.setRegistration, { mode }));
      print({ mode: name }, [`registration ${name}`]);
    },
  },
  "invites create": {
    usage: "invites create [--uses N] [--code CODE]",
    summary: "create an invite code (printed once; the server keeps only its hash)",
    options: {
      uses: { type: "string", description: "registrations it admits (default 1)" },
      code: { type: "string", description: "the code to create (default: a random one)" },
    },
    async run({ client, sign, values, print }) {
      const uses = values.uses === undefined ? 1 : Number(values.uses);
      if (!Number.isInteger(uses) || uses < 1) throw new AdminUsageError("--uses must be a whole number ≥ 1");
      const response = await client.createInviteCode(
        await sign(admin.CreateInviteCodeTbs, S.createInviteCode, {
          maxUses: uses,
          code: typeof values.code === "string" ? values.code : "",
        }),
      );
      const id = response.summary?.id ?? "?";
      print({ code: response.code, id, maxUses: response.summary?.maxUses }, [
        `${response.code}  (id ${id}, ${response.summary?.maxUses} use(s))`,
      ]);
    },
  },
  "invites list": {
    usage: "invites list",
    summary: "list invite codes by id with their use counts",
    async run({ client, sign, print }) {
      const response = await client.listInviteCodes(
        await sign(admin.ListInviteCodesTbs, S.listInviteCodes, {}),
      );
      print({ codes: response.codes.map(inviteJson) }, response.codes.map(inviteLine));
    },
  },
  "invites revoke": {
    usage: "invites revoke ID",
    summary: "revoke an invite code by the id invites list prints",
    async run({ client, sign, args, print }) {
      const id = need(args, 0, "the invite code's id");
      await client.revokeInviteCode(await sign(admin.RevokeInviteCodeTbs, S.revokeInviteCode, { id }));
      print({ revoked: id }, [`revoked invite ${id}`]);
    },
  },
  stats: {
    usage: "stats",
    summary: "counts of users, clients, handles, suspensions, open invite codes",
    async run({ client, sign, print }) {
      const r = await client.getDomainStats(await sign(admin.GetDomainStatsTbs, S.getDomainStats, {}));
      const json = {
        users: Number(r.users),
        clients: Number(r.clients),
        handles: Number(r.handles),
        suspendedUsers: Number(r.suspendedUsers),
        openInviteCodes: Number(r.openInviteCodes),
      };
      print(
        json,
        Object.entries(json).map(([k, v]) => `${k}: ${v}`),
      );
    },
  },
};
