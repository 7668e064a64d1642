// `phoenix-admin`: the operator's command line on the admin API (phoenix.admin.v1). The same
// conventions as `phoenix`: one line per error, exit 0 ok / 1 refused or failed / 2 usage,
// `--help` per command. Every call is signed with an operator key.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { formatClientId, formatUserId, parseUserId, parseUuid, type UserId } from "@phoenix/crypto";
import {
  type AuthAdminServiceClient,
  AuthAdminServiceDefinition,
  admin,
  ClientError,
  createChannel,
  createClient,
  type MessageEncoder,
  requestHeader,
  rpcLabel,
  Status,
  signTbs,
} from "@phoenix/proto";
import {
  DATA_DIR_ADMIN_ADDRESS,
  DATA_DIR_OPERATOR_KEY,
  type OperatorKey,
  operatorKeyEntry,
  readOperatorKeyFile,
  writeOperatorKeyFile,
} from "../operator-key-file.js";

/** Where the CLI writes (swappable in tests). */
export interface AdminCliIo {
  out(line: string): void;
  err(line: string): void;
}

/** A wrong command line: printed with the usage, exit code 2. */
export class AdminUsageError extends Error {
  override readonly name = "AdminUsageError";
}

type Values = Record<string, string | boolean | undefined>;

interface Call {
  client: AuthAdminServiceClient;
  /** Signs a `…Tbs` for `method` with the operator key. */
  sign<T extends { header: admin.LookupUserTbs["header"]; operator: string }>(
    type: MessageEncoder<T>,
    method: { path: string },
    fields: Omit<T, "header" | "operator">,
  ): Promise<{ signed: { tbs: Uint8Array; signature: Uint8Array } }>;
  args: string[];
  values: Values;
  /** Prints a result: JSON with --json, else `lines`. */
  print(json: unknown, lines: readonly string[]): void;
}

interface Command {
  usage: string;
  summary: string;
  options?: Record<string, { type: "string" | "boolean"; description: string }>;
  /** Runs without a server (keys generate). */
  local?: (args: string[], values: Values, io: AdminCliIo) => Promise<void>;
  run?: (call: Call) => Promise<void>;
}

const S = admin.AuthAdminServiceService;
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

function need(args: string[], index: number, what: string): string {
  const value = args[index];
  if (value === undefined || value === "") throw new AdminUsageError(`missing ${what}`);
  return value;
}

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

const commands: Record<string, Command> = {
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
  "keys generate": {
    usage: "keys generate --name NAME --out FILE",
    summary: "write a new operator key file; prints its ADMIN_OPERATOR_KEYS entry",
    options: {
      name: { type: "string", description: "the operator's name" },
      out: { type: "string", description: "the key file to write (mode 0600; never replaced)" },
    },
    async local(_args, values, io) {
      if (typeof values.name !== "string") throw new AdminUsageError("missing --name");
      if (typeof values.out !== "string") throw new AdminUsageError("missing --out");
      const key = await writeOperatorKeyFile(values.out, values.name);
      io.out(operatorKeyEntry(key));
    },
  },
};

const GLOBAL_OPTIONS = {
  admin: { type: "string", description: "the admin listener, HOST:PORT [PHOENIX_ADMIN_ADDRESS]" },
  "operator-key": { type: "string", description: "the operator key file [PHOENIX_OPERATOR_KEY]" },
  "data-dir": {
    type: "string",
    description: "an all-in-one homeserver's data dir: its generated key and admin address [DATA_DIR]",
  },
  json: { type: "boolean", description: "print results as JSON" },
  help: { type: "boolean", description: "show help" },
} as const;

function help(): string {
  const width = Math.max(...Object.values(commands).map((c) => c.usage.length));
  return [
    "usage: phoenix-admin [--admin HOST:PORT --operator-key FILE | --data-dir DIR] [--json] COMMAND",
    "",
    "commands:",
    ...Object.values(commands).map((c) => `  ${c.usage.padEnd(width)}  ${c.summary}`),
    "",
    "options:",
    ...Object.entries(GLOBAL_OPTIONS).map(([name, o]) => `  --${name.padEnd(14)} ${o.description}`),
    "",
    "exit codes: 0 ok, 1 refused or failed, 2 wrong command line",
  ].join("\n");
}

function commandHelp(name: string, command: Command): string {
  return [
    `usage: phoenix-admin ${command.usage}`,
    command.summary,
    ...Object.entries(command.options ?? {}).map(([k, o]) => `  --${k.padEnd(14)} ${o.description}`),
    `(${name} also takes the global options: see phoenix-admin --help)`,
  ].join("\n");
}

/** A gRPC status as one line. */
function describeError(error: unknown, address: string): string {
  if (error instanceof ClientError) {
    if (error.code === Status.UNAVAILABLE)
      return `the admin listener at ${address} is unreachable (${error.details})`;
    const method = error.path.slice(error.path.lastIndexOf("/") + 1);
    return `the server refused ${method}: ${error.details} (${Status[error.code]})`;
  }
  if ((error as NodeJS.ErrnoException).code === "ENOENT")
    return `${(error as NodeJS.ErrnoException).path ?? "a file"} does not exist`;
  return error instanceof Error ? error.message : String(error);
}

/** Where to call and with which key: flags, then env, then the data dir. */
async function resolveTarget(
  values: Values,
  env: NodeJS.ProcessEnv,
): Promise<{ address: string; operator: OperatorKey }> {
  const dataDir = (values["data-dir"] as string | undefined) ?? env.DATA_DIR ?? "./.data";
  const keyFile =
    (values["operator-key"] as string | undefined) ??
    env.PHOENIX_OPERATOR_KEY ??
    join(dataDir, DATA_DIR_OPERATOR_KEY);
  let address = (values.admin as string | undefined) ?? env.PHOENIX_ADMIN_ADDRESS;
  if (address === undefined) {
    const file = join(dataDir, DATA_DIR_ADMIN_ADDRESS);
    try {
      address = (await readFile(file, "utf8")).trim();
    } catch {
      throw new AdminUsageError(
        `no --admin HOST:PORT given and no ${file} (an all-in-one homeserver's data dir)`,
      );
    }
  }
  return { address, operator: await readOperatorKeyFile(keyFile) };
}

/**
 * Runs one `phoenix-admin` command line (without `node` and the script). Returns the exit code:
 * 0 on success, 1 when the call was refused or failed, 2 for a wrong command line.
 */
export async function runAdminCli(
  argv: readonly string[],
  io: AdminCliIo,
  env: NodeJS.ProcessEnv = {},
): Promise<number> {
  const options: Record<string, { type: "string" | "boolean" }> = { ...GLOBAL_OPTIONS };
  for (const c of Object.values(commands))
    for (const [k, o] of Object.entries(c.options ?? {})) options[k] = { type: o.type };
  let parsed: ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (error) {
    io.err(`phoenix-admin: ${(error as Error).message} (see phoenix-admin --help)`);
    return 2;
  }
  const values = parsed.values as Values;
  const [group, verb, ...rest] = parsed.positionals;
  if (group === undefined) {
    (values.help ? io.out : io.err)(help());
    return values.help ? 0 : 2;
  }
  const single = commands[group];
  const name = single ? group : `${group} ${verb ?? ""}`;
  const command = single ?? commands[name];
  const args = single ? parsed.positionals.slice(1) : rest;
  if (!command) {
    io.err(`phoenix-admin: unknown command "${name.trim()}" (see phoenix-admin --help)`);
    return 2;
  }
  if (values.help) {
    io.out(commandHelp(name, command));
    return 0;
  }
  let address = "";
  let channel: ReturnType<typeof createChannel> | undefined;
  try {
    if (command.local) {
      await command.local(args, values, io);
      return 0;
    }
    const target = await resolveTarget(values, env);
    address = target.address;
    channel = createChannel(address);
    const client = createClient(AuthAdminServiceDefinition, channel);
    const { operator } = target;
    await command.run?.({
      client,
      async sign(type, method, fields) {
        const header = requestHeader(rpcLabel(method), undefined);
        // The tbs type is the method's: `fields` are its fields without header and operator.
        const tbs = { ...fields, header, operator: operator.name } as Parameters<typeof type.encode>[0];
        return { signed: await signTbs(type, tbs, (label, bytes) => operator.key.sign(label, bytes)) };
      },
      args,
      values,
      print(json, lines) {
        if (values.json) io.out(JSON.stringify(json));
        else for (const line of lines) io.out(line);
      },
    });
    return 0;
  } catch (error) {
    if (error instanceof AdminUsageError) {
      io.err(`phoenix-admin ${name}: ${error.message}\nusage: phoenix-admin ${command.usage}`);
      return 2;
    }
    io.err(`phoenix-admin ${name}: ${describeError(error, address)}`);
    return 1;
  } finally {
    channel?.close();
  }
}
