import { queue, rpcLabel } from "@phoenix/proto";
import type { CallContext, ResponseStream } from "@phoenix/runtime/grpc";
import { malformed } from "../domain/errors.js";
import { ceilTo } from "../domain/limits.js";
import { setListenerUntil } from "../store/clients.js";
import { deleteMessagesBelow, readMessages } from "../store/queues.js";
import { authenticateClient, type QueueContext } from "./context.js";

const LABEL = rpcLabel(queue.QueueServiceService.listen);
const PAGE = 500;
/** A listener marks its queue as held for this long and refreshes it at half the time. */
const PRESENCE_MS = 60_000;
/** A stream that does not send its init in this time is closed. */
const INIT_TIMEOUT_MS = 30_000;

/**
 * Listen: after a signed `init`, sends every queued message from its start, the `empty`
 * marker, then new messages as they arrive (woken through the bus, so the enqueue may happen on
 * any replica; each wake-up costs one read). Acks delete what they cover. While the stream lives
 * the queue is marked as listened to, so the fan-out consumer sends no push notification.
 */
export async function listen(
  ctx: QueueContext,
  requests: AsyncIterable<queue.ListenRequest>,
  call: CallContext,
  stream: ResponseStream<queue.ListenResponse>,
): Promise<void> {
  const iterator = requests[Symbol.asyncIterator]();
  let initTimer: NodeJS.Timeout | undefined;
  const first = await Promise.race([
    iterator.next(),
    new Promise<never>((_, reject) => {
      initTimer = setTimeout(
        () => reject(malformed("request", `no init within ${INIT_TIMEOUT_MS} ms`)),
        INIT_TIMEOUT_MS,
      );
    }),
  ]).finally(() => clearTimeout(initTimer));
  if (first.done) return;
  const init = first.value.request;
  if (init?.$case !== "init") throw malformed("request", "the first message must be init");
  const { tbs, client, claim } = await authenticateClient(ctx, init.value, queue.ListenTbs, LABEL, "init");
  await claim(ctx.db);
  const clientId = client.clientId;
  if (tbs.sequenceNumberStart > client.nextSeq) {
    throw malformed(
      "init.tbs.sequence_number_start",
      `beyond the queue's next sequence number ${client.nextSeq}`,
    );
  }
  if (tbs.sequenceNumberStart > 0n) await deleteMessagesBelow(ctx.db, clientId, tbs.sequenceNumberStart);

  let sent = tbs.sequenceNumberStart;
  let pending = true;
  let finished = false;
  let failure: unknown;
  let waiter: (() => void) | undefined;
  const wake = () => {
    pending = true;
    waiter?.();
  };
  const finish = (error?: unknown) => {
    if (error !== undefined && failure === undefined) failure = error;
    finished = true;
    wake();
  };
  call.signal.addEventListener("abort", () => finish(), { once: true });

  const unregister = await ctx.listeners.add(clientId, wake);
  const markPresence = (until: Date | null) => setListenerUntil(ctx.db, clientId, until);
  // The lease is rounded up to whole minutes: it needs no finer time (see the schema).
  const lease = () => ceilTo(ctx.now() + PRESENCE_MS, 60_000);
  await markPresence(lease());
  const presence = setInterval(() => {
    markPresence(lease()).catch((err: unknown) =>
      call.log.warn({ err }, "refreshing listener presence failed"),
    );
  }, PRESENCE_MS / 2);
  presence.unref();

  const acks = (async () => {
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      const request = next.value.request;
      if (request?.$case !== "ack") throw malformed("request", "after init only acks are accepted");
      const upTo = request.value.upToSequenceNumber;
      if (upTo > sent) throw malformed("ack.up_to_sequence_number", `beyond the messages sent (${sent})`);
      await deleteMessagesBelow(ctx.db, clientId, upTo);
    }
  })().then(
    () => finish(),
    (error: unknown) => finish(error),
  );

  try {
    let drained = false;
    while (!finished) {
      if (!pending) {
        await new Promise<void>((resolve) => {
          waiter = resolve;
        });
        waiter = undefined;
        continue;
      }
      pending = false;
      for (let page = 0; page < 1_000_000 && !finished; page++) {
        const rows = await readMessages(ctx.db, clientId, sent, PAGE);
        for (const row of rows) {
          await stream.send({
            event: { $case: "message", value: { sequenceNumber: row.seq, ciphertext: row.message } },
          });
          sent = row.seq + 1n;
        }
        if (rows.length < PAGE) break;
      }
      if (!drained && !finished) {
        await stream.send({ event: { $case: "empty", value: {} } });
        drained = true;
      }
    }
  } finally {
    clearInterval(presence);
    await unregister();
    await markPresence(null).catch(() => {});
    finish();
  }
  await acks;
  if (failure !== undefined && !call.signal.aborted) throw failure;
}
