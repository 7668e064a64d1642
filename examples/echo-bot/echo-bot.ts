// Echo bot: a Phoenix user that accepts every connection request and answers every text message
// it receives with "echo: <text>". It is an ordinary client of @phoenix/client — the same code an
// app runs — talking to one homeserver through its edge gateway (REST + WebSocket).
//
//   node --conditions=source --import tsx examples/echo-bot/echo-bot.ts --handle echo
//
// Options (flags win over the environment):
//   --server URL        edge gateway (PHOENIX_SERVER, default http://127.0.0.1:8080)
//   --store PATH        SQLite store (ECHO_BOT_STORE, default ./echo-bot.sqlite)
//   --name NAME         display name on first registration (ECHO_BOT_NAME, default "Echo Bot")
//   --handle HANDLE     handle to claim unless held already (ECHO_BOT_HANDLE, optional)
//   --max-replies N     exit after N replies (ECHO_BOT_MAX_REPLIES; default: run until Ctrl-C);
//                       for tests: what else was unread in the last conversation stays unanswered
import { parseArgs } from "node:util";
import { createRestTransport, NotRegisteredError, PhoenixClient, type Transport } from "@phoenix/client";

/** How often a bot with a handle fetches that handle's connection requests. */
const HANDLE_POLL_MS = 2000;

interface Options {
  server: string;
  store: string;
  name: string;
  handle: string | undefined;
  maxReplies: number;
}

function readOptions(): Options {
  const { values } = parseArgs({
    options: {
      server: { type: "string" },
      store: { type: "string" },
      name: { type: "string" },
      handle: { type: "string" },
      "max-replies": { type: "string" },
    },
  });
  const env = process.env;
  const max = values["max-replies"] ?? env.ECHO_BOT_MAX_REPLIES;
  const maxReplies = max === undefined || max === "" ? Number.POSITIVE_INFINITY : Number(max);
  if (!(maxReplies >= 1)) throw new Error(`--max-replies takes a positive number, not "${max}"`);
  return {
    server: values.server ?? env.PHOENIX_SERVER ?? "http://127.0.0.1:8080",
    store: values.store ?? env.ECHO_BOT_STORE ?? "echo-bot.sqlite",
    name: values.name ?? env.ECHO_BOT_NAME ?? "Echo Bot",
    handle: values.handle ?? (env.ECHO_BOT_HANDLE || undefined),
    maxReplies,
  };
}

/**
 * Opens the bot's identity from its store, or registers a new user when the store is empty.
 * The store holds the user's keys, contacts, MLS group states and queue positions: keep it, and
 * the bot comes back as the same user with its conversations; lose it, and the user is gone.
 */
async function openOrRegister(transport: Transport, options: Options): Promise<PhoenixClient> {
  try {
    const client = await PhoenixClient.open({ transport, storePath: options.store });
    console.log(`echo-bot: opened ${client.userId} from ${options.store}`);
    return client;
  } catch (error) {
    if (!(error instanceof NotRegisteredError)) throw error;
  }
  // The user id's domain is the homeserver's own: ask its AS (an empty domain means "yours").
  const { domain } = await transport.auth.getAsCredentials({ domain: "" });
  const client = await PhoenixClient.register({
    transport,
    storePath: options.store,
    domain,
    displayName: options.name,
  });
  console.log(`echo-bot: registered ${client.userId}`);
  return client;
}

/** Claims the handle unless this user holds it already (ALREADY_EXISTS when someone else does). */
async function ensureHandle(client: PhoenixClient, handle: string | undefined): Promise<void> {
  if (handle === undefined || client.handles().includes(handle)) return;
  // A handle lets people connect without knowing the user id (`phoenix connect echo`).
  await client.createHandle(handle);
  console.log(`echo-bot: claimed handle ${handle}`);
}

async function main(): Promise<void> {
  const options = readOptions();
  const transport = createRestTransport(options.server);
  const client = await openOrRegister(transport, options);
  await ensureHandle(client, options.handle);

  let replies = 0;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });

  // One pass over the local store: accept pending requests, answer unread text messages. The
  // client persists everything it receives before `onChange` fires, so the store is the inbox.
  const respond = async (): Promise<void> => {
    for (const request of client.connectionRequests()) {
      if (request.direction !== "incoming" || request.status !== "pending") continue;
      // Accepting joins the connection group; the requester becomes a contact and can write.
      await client.acceptConnection(request.id);
      console.log(`echo-bot: accepted connection request from ${request.userId}`);
    }
    for (const conversation of client.conversations()) {
      if (conversation.status !== "active" || conversation.unread === 0) continue;
      if (replies >= options.maxReplies) return;
      const unread = client
        .messages(conversation.id)
        .filter((m) => !m.read && m.kind === "text" && m.sender !== client.userId);
      // Marked read before answering, so a message is answered at most once, also across
      // restarts (the read flag lives in the store).
      client.markRead(conversation.id);
      for (const message of unread) {
        if (replies >= options.maxReplies) return;
        await client.sendMessage(conversation.id, `echo: ${message.body}`);
        replies++;
        console.log(`echo-bot: replied to ${message.sender} in ${conversation.id}: echo: ${message.body}`);
      }
    }
  };

  // Passes run one after another: `onChange` may fire again while a reply is being sent.
  let passes: Promise<void> = Promise.resolve();
  const enqueue = (task: () => Promise<void>): void => {
    passes = passes
      .then(task)
      .catch((error: unknown) => console.error(`echo-bot: ${(error as Error).message}`))
      .then(() => {
        if (replies >= options.maxReplies) finish();
      });
  };
  const schedule = (): void => enqueue(respond);

  // `listen` keeps the QS queue and the AS connection queue open over WebSockets, processes each
  // message (MLS decryption, Welcomes, connection offers) and reconnects by itself.
  const listener = client.listen({
    onChange: schedule,
    onError: (error) => console.error(`echo-bot: reconnecting (${error.message})`),
  });
  schedule(); // messages that were already in the store when the bot started

  // `listen` covers the user's own connection queue, not the queues of its handles: requests
  // sent to a handle (`connect echo`) are fetched by `sync`, so a bot with a handle polls.
  const poll = setInterval(() => {
    if (client.handles().length === 0) return;
    enqueue(async () => {
      const { processed } = await client.sync();
      if (processed > 0) await respond();
    });
  }, HANDLE_POLL_MS);

  process.once("SIGINT", finish);
  process.once("SIGTERM", finish);
  console.log(`echo-bot: listening as ${client.userId} (Ctrl-C to stop)`);
  await finished;

  clearInterval(poll);
  await listener.stop();
  await passes;
  await client.close();
  transport.close();
  console.log(`echo-bot: stopped after ${replies} replies`);
}

main().catch((error: unknown) => {
  console.error(`echo-bot: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
