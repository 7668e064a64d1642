// Child process of e2e-throughput.bench.ts (P3): one recipient's PhoenixClient listening on its
// queue, in a process of its own so the senders' work in the bench process does not hold up its
// event loop. Prints `ready`, then one line per processed bench text: `<tag> <sent at> <processed
// at>` (wall-clock milliseconds). Ends when its stdin closes.
// Usage: node --conditions=source --import tsx latency-listener.ts <edge URL> <store path> <conversation id>
import { createRestTransport, PhoenixClient } from "@phoenix/client";

const [url, storePath, conversationId] = process.argv.slice(2);
if (url === undefined || storePath === undefined || conversationId === undefined) {
  console.error("usage: latency-listener.ts <edge URL> <store path> <conversation id>");
  process.exit(2);
}
const transport = createRestTransport(url);
const client = await PhoenixClient.open({ transport, storePath });
await client.sync();
let seen = client.messages(conversationId).length;
const listener = client.listen({
  keyUpdateMaxAgeMs: 0,
  onChange: () => {
    const now = performance.timeOrigin + performance.now();
    const messages = client.messages(conversationId);
    for (const m of messages.slice(seen)) {
      const [tag, at] = m.body.split(" ", 2);
      if (tag?.startsWith("p3-")) process.stdout.write(`${tag} ${at} ${now.toFixed(3)}\n`);
    }
    seen = messages.length;
  },
  onError: (e) => console.error(`listener: ${e.message}`),
});
process.stdout.write("ready\n");
process.stdin.resume();
process.stdin.on("end", () => {
  void (async () => {
    await listener.stop();
    await client.close();
    transport.close();
    process.exit(0);
  })();
});
