// Start-up cost is what a CLI user feels: this module imports nothing heavy. A command loads the
// client (ts-mls, drizzle, better-sqlite3, the REST transport with grpc-js and ws) with dynamic
// `import()` only when it runs; `--help` and usage errors load none of it, `whoami` only the store.
import { mkdirSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { describeEvent } from "../events.js";
import type { PhoenixClient } from "../phoenix-client.js";
import type { Transport } from "../transport.js";
import type { ConnectionRequest, Conversation, Message, Person } from "../types.js";
import type { LocalProfile } from "./local-profile.js";

/** Where the CLI writes (swappable in tests). */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
  /** Resolves when the user interrupts (Ctrl-C); `watch` stops then. */
  interrupted: Promise<void>;
}

/** A wrong command line: printed with the usage hint, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

interface Globals {
  server: string;
  store: string;
}

interface CommandInfo {
  usage: string;
  summary: string;
  options?: Record<string, { type: "string" | "boolean"; description: string }>;
}

/** A command run on the opened client (after a sync, unless `syncFirst` is false). */
interface ClientCommand extends CommandInfo {
  local?: false;
  registers?: boolean;
  /** Default true: sync before `run`. False: the command catches up itself only if it must. */
  syncFirst?: boolean;
  run(ctx: Context): Promise<void>;
}

/** A command that reads the local store only: no client, no network. */
interface LocalCommand extends CommandInfo {
  local: true;
  run(ctx: LocalContext): Promise<void>;
}

type Command = ClientCommand | LocalCommand;

interface LocalContext {
  profile: LocalProfile;
  io: CliIo;
}

interface Context {
  client: PhoenixClient;
  args: string[];
  values: Record<string, string | boolean | undefined>;
  globals: Globals;
  io: CliIo;
  transport: Transport;
}

const DEFAULT_SERVER = "http://127.0.0.1:8080";

function need(args: string[], index: number, what: string): string {
  const v = args[index];
  if (v === undefined || v === "") throw new UsageError(`missing ${what}`);
  return v;
}

/** Finds a conversation by id, title, or (connection conversations) the contact's id or name. */
function findConversation(client: PhoenixClient, ref: string): Conversation {
  const all = client.conversations();
  const byId = all.find((c) => c.id === ref);
  if (byId) return byId;
  const contact = client.contacts().find((c) => c.userId === ref || c.displayName === ref);
  if (contact) {
    const conv = all.find((c) => c.id === contact.conversationId);
    if (conv) return conv;
  }
  const byTitle = all.filter((c) => c.title === ref);
  if (byTitle.length === 1 && byTitle[0]) return byTitle[0];
  if (byTitle.length > 1) throw new UsageError(`"${ref}" names ${byTitle.length} conversations: use the id`);
  throw new UsageError(`no conversation "${ref}" (see \`phoenix conversations\`)`);
}

const USER_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}@/i;

/** A user id, or a contact's display name. */
function resolveUser(client: PhoenixClient, ref: string): string {
  if (USER_ID.test(ref)) return ref;
  const matches = client.contacts().filter((c) => c.displayName === ref);
  if (matches.length === 1 && matches[0]) return matches[0].userId;
  if (matches.length > 1) throw new UsageError(`several contacts are called "${ref}": use the user id`);
  throw new UsageError(`"${ref}" is neither a user id nor a contact's name (see \`phoenix contacts\`)`);
}

/** A person as the CLI names them: the display name, else the user id marked as such. */
function label(p: Person): string {
  if (p.self) return "you";
  return p.displayName ?? `${p.userId} (no profile yet)`;
}

function nameOf(client: PhoenixClient, userId: string | undefined): string {
  if (!userId) return "*";
  if (userId === client.userId) return "me";
  return label(client.person(userId));
}

/** "Alice (787d…@chat.local)", or the user id alone when no profile is available. */
function nameAndId(client: PhoenixClient, userId: string): string {
  const name = client.displayNameOf(userId);
  return name === undefined ? `${userId} (no profile yet)` : `${name} (${userId})`;
}

function formatMessage(client: PhoenixClient, m: Message): string {
  const time = m.sentAt.toISOString().slice(11, 19);
  if (m.kind === "system")
    return `[${time}] * ${m.event === undefined ? m.body : describeEvent(m.event, label)}`;
  return `[${time}] ${nameOf(client, m.sender)}: ${m.body}`;
}

function formatRequest(client: PhoenixClient, r: ConnectionRequest): string {
  const who = r.direction === "incoming" ? nameAndId(client, r.userId) : r.userId;
  return `#${r.id}  ${r.direction === "incoming" ? "from" : "to"} ${who}  ${r.status}`;
}

const commands: Record<string, Command> = {
  register: {
    usage: "register --domain DOMAIN --name NAME",
    summary: "create a new user on the server and keep it in the store",
    options: {
      domain: { type: "string", description: "the homeserver's domain (default: localhost)" },
      name: { type: "string", description: "your display name" },
    },
    registers: true,
    async run({ client, io }) {
      io.out(`registered ${client.userId} (${client.displayName})`);
    },
  },
  whoami: {
    usage: "whoami",
    summary: "show this profile's user id and handles",
    local: true,
    async run({ profile, io }) {
      io.out(`${profile.userId} (${profile.displayName})`);
      for (const h of profile.handles) io.out(`handle: ${h}`);
    },
  },
  handle: {
    usage: "handle NAME",
    summary: "claim a handle others can connect to",
    async run({ client, args, io }) {
      const handle = need(args, 0, "the handle");
      await client.createHandle(handle);
      io.out(`handle ${handle} is yours`);
    },
  },
  connect: {
    usage: "connect HANDLE|USER_ID",
    summary: "send a connection request to a handle or a user id",
    async run({ client, args, io }) {
      const target = need(args, 0, "the handle or user id");
      if (!USER_ID.test(target)) {
        await client.connectByHandle(target);
        io.out(`connection request sent to handle ${target}`);
        return;
      }
      const userId = target;
      await client.connect(userId);
      io.out(`connection request sent to ${userId}`);
    },
  },
  requests: {
    usage: "requests",
    summary: "list connection requests",
    async run({ client, io }) {
      const list = client.connectionRequests();
      if (list.length === 0) io.out("no connection requests");
      for (const r of list) io.out(formatRequest(client, r));
    },
  },
  reject: {
    usage: "reject REQUEST_ID",
    summary: "decline an incoming connection request (the requester is told)",
    async run({ client, args, io }) {
      const raw = need(args, 0, "the request id").replace(/^#/, "");
      const id = Number(raw);
      if (!Number.isInteger(id)) throw new UsageError(`not a request id: ${raw}`);
      await client.rejectConnection(id);
      io.out(`rejected #${id}`);
    },
  },
  rename: {
    usage: "rename NAME",
    summary: "change your display name (your contacts and groups are told)",
    async run({ client, args, io }) {
      const name = args.join(" ");
      if (!name) throw new UsageError("missing the name");
      const result = await client.setDisplayName(name);
      for (const e of result.errors) io.err(`warning: ${e}`);
      io.out(`you are now ${name}`);
    },
  },
  accept: {
    usage: "accept REQUEST_ID",
    summary: "accept an incoming connection request (ids from `requests`)",
    async run({ client, args, io }) {
      const raw = need(args, 0, "the request id").replace(/^#/, "");
      const id = Number(raw);
      if (!Number.isInteger(id)) throw new UsageError(`not a request id: ${raw}`);
      const conversationId = await client.acceptConnection(id);
      io.out(`accepted; conversation ${conversationId}`);
    },
  },
  contacts: {
    usage: "contacts",
    summary: "list your contacts",
    async run({ client, io }) {
      const list = client.contacts();
      if (list.length === 0) io.out("no contacts yet");
      for (const c of list)
        io.out(`${c.userId}  ${c.displayName ?? "(no profile yet)"}  (conversation ${c.conversationId})`);
    },
  },
  conversations: {
    usage: "conversations",
    summary: "list conversations",
    async run({ client, io }) {
      const list = client.conversations();
      if (list.length === 0) io.out("no conversations");
      for (const c of list)
        io.out(
          `${c.id}  ${
            c.kind === "group"
              ? c.title
              : `with ${c.members
                  .filter((m) => m !== client.userId)
                  .map((m) => nameOf(client, m))
                  .join(", ")}`
          }  ${c.members.length} members${c.unread ? `, ${c.unread} unread` : ""}${c.status === "inactive" ? " (inactive)" : ""}`,
        );
    },
  },
  members: {
    usage: "members CONVERSATION",
    summary: "list the members of a conversation (user ids, sorted), with their names where known",
    async run({ client, args, io }) {
      const conv = findConversation(client, need(args, 0, "the conversation"));
      for (const member of [...conv.members].sort()) {
        const name = member === client.userId ? "me" : client.displayNameOf(member);
        io.out(`${member}  ${name ?? "(no profile yet)"}`);
      }
    },
  },
  create: {
    usage: "create TITLE",
    summary: "create a group conversation",
    async run({ client, args, io }) {
      const id = await client.createConversation(need(args, 0, "the title"));
      io.out(`created ${id}`);
    },
  },
  invite: {
    usage: "invite CONVERSATION CONTACT...",
    summary: "add contacts (user ids or names) to a group",
    async run({ client, args, io }) {
      const conv = findConversation(client, need(args, 0, "the conversation"));
      need(args, 1, "at least one contact");
      await client.invite(
        conv.id,
        args.slice(1).map((a) => resolveUser(client, a)),
      );
      io.out(`invited ${args.slice(1).join(", ")} to ${conv.title || conv.id}`);
    },
  },
  remove: {
    usage: "remove CONVERSATION MEMBER...",
    summary: "remove members (user ids or contact names) from a group",
    async run({ client, args, io }) {
      const conv = findConversation(client, need(args, 0, "the conversation"));
      need(args, 1, "at least one member");
      await client.remove(
        conv.id,
        args.slice(1).map((a) => resolveUser(client, a)),
      );
      io.out(`removed ${args.slice(1).join(", ")} from ${conv.title || conv.id}`);
    },
  },
  leave: {
    usage: "leave CONVERSATION",
    summary: "leave a group",
    async run({ client, args, io }) {
      const conv = findConversation(client, need(args, 0, "the conversation"));
      await client.leave(conv.id);
      io.out(`left ${conv.title || conv.id}`);
    },
  },
  send: {
    usage: "send CONVERSATION TEXT...",
    summary: "send a message (CONVERSATION: id, group title, or a contact's id or name)",
    // One DS call in the common case: no sync first. Sending catches up from the queue by itself
    // when the DS says this client is behind (a commit it has not processed); only a
    // conversation the store does not know yet (a connection just accepted) needs a sync first.
    syncFirst: false,
    async run({ client, args, io }) {
      const ref = need(args, 0, "the conversation");
      const text = args.slice(1).join(" ");
      if (!text) throw new UsageError("missing the text");
      let conv: Conversation;
      try {
        conv = findConversation(client, ref);
      } catch (error) {
        if (!(error instanceof UsageError)) throw error;
        await syncReporting(client, io);
        conv = findConversation(client, ref);
      }
      await client.sendMessage(conv.id, text);
      io.out("sent");
    },
  },
  messages: {
    usage: "messages CONVERSATION",
    summary: "show a conversation's messages",
    async run({ client, args, io }) {
      const conv = findConversation(client, need(args, 0, "the conversation"));
      const list = client.messages(conv.id);
      if (list.length === 0) io.out("no messages");
      for (const m of list) io.out(formatMessage(client, m));
      client.markRead(conv.id);
    },
  },
  watch: {
    usage: "watch [--count N]",
    summary: "print new messages and requests as they arrive, until Ctrl-C",
    options: { count: { type: "string", description: "stop after N new messages" } },
    async run({ client, values, io }) {
      const limit = typeof values.count === "string" ? Number(values.count) : Number.POSITIVE_INFINITY;
      if (Number.isNaN(limit) || limit < 1) throw new UsageError("--count takes a positive number");
      const seen = new Set<string>();
      const mark = (print: boolean): number => {
        let printed = 0;
        for (const r of client.connectionRequests()) {
          const key = `r${r.id}:${r.status}`;
          if (seen.has(key)) continue;
          seen.add(key);
          if (print && r.direction === "incoming" && r.status === "pending")
            io.out(
              `connection request #${r.id} from ${nameAndId(client, r.userId)} (phoenix accept ${r.id})`,
            );
          if (print && r.direction === "outgoing" && r.status === "rejected")
            io.out(`connection request #${r.id} to ${r.userId} was rejected`);
        }
        for (const c of client.conversations())
          for (const m of client.messages(c.id)) {
            const key = `${c.id}:${m.id}`;
            if (seen.has(key)) continue;
            seen.add(key);
            if (!print || m.sender === client.userId) continue;
            io.out(`${c.kind === "group" ? `${c.title} ` : ""}${formatMessage(client, m)}`);
            if (m.kind === "text") printed++;
          }
        return printed;
      };
      mark(false);
      let count = 0;
      let done: () => void = () => {};
      const finished = new Promise<void>((resolve) => {
        done = resolve;
      });
      io.out(`watching as ${client.displayName} (${client.userId}) (Ctrl-C to stop)`);
      const listener = client.listen({
        onChange: () => {
          count += mark(true);
          if (count >= limit) done();
        },
        onError: (e) => io.err(`(reconnecting: ${e.message})`),
      });
      await Promise.race([finished, io.interrupted]);
      await listener.stop();
    },
  },
};

function help(): string {
  const width = Math.max(...Object.values(commands).map((c) => c.usage.length));
  return [
    "phoenix: a command-line Phoenix client",
    "",
    "usage: phoenix [--server URL] [--profile NAME | --store PATH] COMMAND [ARGS]",
    "",
    "commands:",
    ...Object.values(commands).map((c) => `  ${c.usage.padEnd(width)}  ${c.summary}`),
    "",
    "global options:",
    `  --server URL     the homeserver's edge gateway (default ${DEFAULT_SERVER}, or $PHOENIX_SERVER)`,
    "  --profile NAME   keeps the store in ~/.phoenix/NAME/client.sqlite (default: default)",
    "  --store PATH     the SQLite store file (overrides --profile)",
    "",
    "`phoenix COMMAND --help` describes one command.",
  ].join("\n");
}

function commandHelp(name: string, c: Command): string {
  const lines = [`usage: phoenix [global options] ${c.usage}`, "", c.summary];
  if (c.options) {
    lines.push("", "options:");
    for (const [k, o] of Object.entries(c.options)) lines.push(`  --${k.padEnd(10)} ${o.description}`);
  }
  lines.push("", `(\`phoenix --help\` lists the global options; this is \`${name}\`.)`);
  return lines.join("\n");
}

/** Syncs, printing what could not be processed as warnings (the command still runs). */
async function syncReporting(client: PhoenixClient, io: CliIo): Promise<void> {
  const synced = await client.sync();
  for (const e of synced.errors) io.err(`warning: ${e}`);
}

async function describeError(error: unknown): Promise<string> {
  // Loaded here, not at start: @phoenix/wire pulls in nice-grpc and grpc-js. A command that got
  // as far as a call has loaded it already.
  const { GrpcCallError } = await import("@phoenix/wire");
  if (error instanceof GrpcCallError) {
    const what = error.path.split("/").pop();
    if (error.code === 14) return `the server is unreachable (${error.statusMessage})`;
    return `the server refused ${what}: ${error.statusMessage || error.message}`;
  }
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * Runs one `phoenix` command line (without `node` and the script). Returns the exit code:
 * 0 on success, 1 when the command failed, 2 for a wrong command line.
 */
export async function runCli(
  argv: readonly string[],
  io: CliIo,
  env: NodeJS.ProcessEnv = {},
): Promise<number> {
  const allOptions: Record<string, { type: "string" | "boolean" }> = {
    server: { type: "string" },
    store: { type: "string" },
    profile: { type: "string" },
    help: { type: "boolean" },
  };
  for (const c of Object.values(commands))
    for (const [k, o] of Object.entries(c.options ?? {})) allOptions[k] = { type: o.type };
  let parsed: ReturnType<typeof parseArgs<{ options: typeof allOptions; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: allOptions, allowPositionals: true, strict: true });
  } catch (error) {
    io.err(`phoenix: ${(error as Error).message}\n(see phoenix --help)`);
    return 2;
  }
  const [name, ...args] = parsed.positionals;
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (!name) {
    (values.help ? io.out : io.err)(help());
    return values.help ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    io.err(`phoenix: unknown command "${name}"\n(see phoenix --help)`);
    return 2;
  }
  if (values.help) {
    io.out(commandHelp(name, command));
    return 0;
  }
  const server = (values.server as string | undefined) ?? env.PHOENIX_SERVER ?? DEFAULT_SERVER;
  const store =
    (values.store as string | undefined) ??
    join(
      env.HOME ?? homedir(),
      ".phoenix",
      (values.profile as string | undefined) ?? "default",
      "client.sqlite",
    );
  const notRegistered = `no user in ${store}: run \`phoenix register --name NAME --domain DOMAIN\` first`;
  let transport: Transport | undefined;
  let client: PhoenixClient | undefined;
  try {
    mkdirSync(dirname(store), { recursive: true });
    if (command.local) {
      const { readLocalProfile } = await import("./local-profile.js");
      const profile = readLocalProfile(store);
      if (profile === undefined) throw new Error(notRegistered);
      await command.run({ profile, io });
      return 0;
    }
    const [{ PhoenixClient }, { createRestTransport }] = await Promise.all([
      import("../phoenix-client.js"),
      import("../rest-transport.js"),
    ]);
    transport = createRestTransport(server);
    if (command.registers) {
      const displayName = values.name;
      if (typeof displayName !== "string" || !displayName) throw new UsageError("missing --name");
      const domain = typeof values.domain === "string" ? values.domain : "localhost";
      const { readLocalProfile } = await import("./local-profile.js");
      if (readLocalProfile(store) !== undefined)
        throw new UsageError(`${store} already holds a registered user (use another --profile or --store)`);
      client = await PhoenixClient.register({ transport, storePath: store, domain, displayName });
    } else {
      try {
        client = await PhoenixClient.open({ transport, storePath: store });
      } catch (error) {
        if (error instanceof Error && error.name === "NotRegisteredError") throw new Error(notRegistered);
        throw error;
      }
      if (command.syncFirst !== false) await syncReporting(client, io);
    }
    await command.run({ client, args, values, globals: { server, store }, io, transport });
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`phoenix ${name}: ${error.message}\nusage: phoenix ${command.usage}`);
      return 2;
    }
    io.err(`phoenix ${name}: ${await describeError(error)}`);
    return 1;
  } finally {
    await client?.close().catch(() => undefined);
    transport?.close();
  }
}
