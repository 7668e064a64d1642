// `phoenix-admin`: the operator's command line on the admin API (phoenix.admin.v1). The same
// conventions as `phoenix`: one line per error, exit 0 ok / 1 refused or failed / 2 usage,
// `--help` per command. Every call is signed with an operator key.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  AuthAdminServiceDefinition,
  ClientError,
  createChannel,
  createClient,
  FederationAdminServiceDefinition,
  QueueAdminServiceDefinition,
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
import { authCommands } from "./auth-commands.js";
import { type AdminCliIo, type AdminService, AdminUsageError, type Command, type Values } from "./command.js";
import { federationCommands } from "./federation-commands.js";
import { queueCommands } from "./queue-commands.js";

export { type AdminCliIo, AdminUsageError } from "./command.js";

const commands: Record<string, Command> = {
  ...authCommands,
  ...federationCommands,
  ...queueCommands,
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
  admin: { type: "string", description: "the AS admin listener, HOST:PORT [PHOENIX_ADMIN_ADDRESS]" },
  "federation-admin": {
    type: "string",
    description: "the federation gateway's admin listener [PHOENIX_FEDERATION_ADMIN_ADDRESS]",
  },
  "queue-admin": { type: "string", description: "the QS admin listener [PHOENIX_QUEUE_ADMIN_ADDRESS]" },
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
    "usage: phoenix-admin [--admin HOST:PORT | --federation-admin HOST:PORT | --queue-admin HOST:PORT] [--operator-key FILE] [--data-dir DIR] [--json] COMMAND",
    "",
    "commands:",
    ...Object.values(commands).map((c) => `  ${c.usage.padEnd(width)}  ${c.summary}`),
    "",
    "options:",
    ...Object.entries(GLOBAL_OPTIONS).map(([name, o]) => `  --${name.padEnd(16)} ${o.description}`),
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

/** Each service's admin listener: its flag and variable (the all-in-one has one for all). */
const LISTENERS: Record<AdminService, { flag: string; variable: string }> = {
  auth: { flag: "admin", variable: "PHOENIX_ADMIN_ADDRESS" },
  federation: { flag: "federation-admin", variable: "PHOENIX_FEDERATION_ADMIN_ADDRESS" },
  queue: { flag: "queue-admin", variable: "PHOENIX_QUEUE_ADMIN_ADDRESS" },
};

/**
 * Where to call and with which key: the service's flag, then its variable, then the data dir (an
 * all-in-one homeserver's one admin listener serves every service).
 */
async function resolveTarget(
  service: AdminService,
  values: Values,
  env: NodeJS.ProcessEnv,
): Promise<{ address: string; operator: OperatorKey }> {
  const dataDir = (values["data-dir"] as string | undefined) ?? env.DATA_DIR ?? "./.data";
  const keyFile =
    (values["operator-key"] as string | undefined) ??
    env.PHOENIX_OPERATOR_KEY ??
    join(dataDir, DATA_DIR_OPERATOR_KEY);
  const { flag, variable } = LISTENERS[service];
  let address = (values[flag] as string | undefined) ?? env[variable];
  if (address === undefined) {
    const file = join(dataDir, DATA_DIR_ADMIN_ADDRESS);
    try {
      address = (await readFile(file, "utf8")).trim();
    } catch {
      throw new AdminUsageError(
        `no --${flag} HOST:PORT given and no ${file} (an all-in-one homeserver's data dir)`,
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
  const words = parsed.positionals;
  if (words.length === 0) {
    (values.help ? io.out : io.err)(help());
    return values.help ? 0 : 2;
  }
  // The longest command name the words start with: `stats`, `users list`, `federation policy set`.
  const length = [3, 2, 1].find((n) => words.length >= n && commands[words.slice(0, n).join(" ")]);
  const name = words.slice(0, length ?? 2).join(" ");
  const command = commands[name];
  const args = words.slice(length ?? 2);
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
    const target = await resolveTarget(command.service ?? "auth", values, env);
    address = target.address;
    channel = createChannel(address);
    const { operator } = target;
    await command.run?.({
      client: createClient(AuthAdminServiceDefinition, channel),
      federation: createClient(FederationAdminServiceDefinition, channel),
      queue: createClient(QueueAdminServiceDefinition, channel),
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
