import type { common } from "@phoenix/proto";
import { type Database, transaction } from "@phoenix/runtime/db";
import { NotFoundError } from "@phoenix/runtime/errors";
import type { AuthContext } from "../context.js";
import { checkSequenceStart } from "../domain/connection-queue.js";
import { malformed } from "../domain/errors.js";
import type { PackageOwner } from "../store/connection-packages.js";
import { deleteMessagesBelow, findQueue, readMessages } from "../store/connection-queues.js";
import { queueActivitySubject } from "./enqueue.js";

const BATCH = 100;

/** One request after `init` on a listen stream: only acks are allowed. */
type ListenFollowUp = {
  request?: { $case: "init"; value: common.Signed } | { $case: "ack"; value: common.QueueAck };
};

/** What a listener sends: a queued or new message, or the drained marker. */
export type ListenEvent =
  | { $case: "message"; value: common.QueueMessage }
  | { $case: "empty"; value: common.QueueEmpty };

/** Who owns the queue a listen `init` asks for, and where the listener wants to start. */
export interface ListenTarget {
  owner: PackageOwner;
  sequenceNumberStart: bigint;
}

/**
 * One connection-queue listen RPC (shared by the client and the handle variant): reads the
 * `init`, authenticates it with `locate` inside a transaction that also drops what lies below
 * the requested start, then serves the stream with {@link serveListener}.
 */
export async function serveQueueListen(
  ctx: AuthContext,
  requests: AsyncIterable<ListenFollowUp>,
  signal: AbortSignal,
  send: (event: ListenEvent) => Promise<void>,
  locate: (tx: Database, init: common.Signed, now: number) => Promise<ListenTarget>,
): Promise<void> {
  const iterator = requests[Symbol.asyncIterator]();
  const first = await iterator.next();
  if (first.done) return;
  const init = first.value.request;
  if (init?.$case !== "init") throw malformed("request", "the first message must be init");
  const now = ctx.now();
  const { queueId, start } = await transaction(ctx.db, async (tx) => {
    const { owner, sequenceNumberStart } = await locate(tx, init.value, now);
    const queue = await findQueue(tx, owner, true);
    if (!queue) throw new NotFoundError("no such connection queue");
    checkSequenceStart(sequenceNumberStart, queue.nextSequence, "tbs.sequence_number_start");
    await deleteMessagesBelow(tx, queue.queueId, sequenceNumberStart);
    return { queueId: queue.queueId, start: sequenceNumberStart };
  });
  await serveListener(ctx, queueId, start, iterator, signal, send);
}

/**
 * Serves a connection-queue listen stream after its `init` was authenticated (shared by both
 * listen RPCs): sends every stored message from `start`, then `empty`, then new messages as
 * enqueues on any replica announce them on the bus. Acks delete messages; nothing is deleted
 * without an ack, so a stream cut before the ack gets the same messages on the next listen.
 */
export async function serveListener(
  ctx: AuthContext,
  queueId: Uint8Array,
  start: bigint,
  requests: AsyncIterator<ListenFollowUp>,
  signal: AbortSignal,
  send: (event: ListenEvent) => Promise<void>,
): Promise<void> {
  let cursor = start;
  let pending = true;
  let ended = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const poke = () => wake?.();
  signal.addEventListener("abort", poke);
  const subscription = await ctx.bus.listen(queueActivitySubject(queueId), () => {
    pending = true;
    poke();
  });
  const acks = (async () => {
    for (;;) {
      const next = await requests.next();
      if (next.done) return;
      const request = next.value.request;
      if (request?.$case !== "ack") throw malformed("request", "only acks may follow init");
      const upTo = request.value.upToSequenceNumber;
      if (upTo > cursor)
        throw malformed("ack.up_to_sequence_number", `${upTo} is beyond the messages sent (${cursor})`);
      await deleteMessagesBelow(ctx.db, queueId, upTo);
    }
  })().then(
    () => {
      ended = true;
      poke();
    },
    (error: unknown) => {
      failure = error;
      poke();
    },
  );
  try {
    let drained = false;
    while (!ended && failure === undefined && !signal.aborted) {
      if (pending) {
        pending = false;
        for (;;) {
          const batch = await readMessages(ctx.db, queueId, cursor, BATCH);
          for (const message of batch) {
            await send({ $case: "message", value: message });
            cursor = message.sequenceNumber + 1n;
          }
          if (batch.length < BATCH) break;
        }
        if (!drained) {
          drained = true;
          await send({ $case: "empty", value: {} });
        }
        continue;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        if (pending || ended || failure !== undefined || signal.aborted) resolve();
      });
      wake = undefined;
    }
    if (failure !== undefined) throw failure;
  } finally {
    signal.removeEventListener("abort", poke);
    await subscription.stop();
    void acks;
  }
}
