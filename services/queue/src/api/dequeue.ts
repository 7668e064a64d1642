import { queue, rpcLabel } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import { malformed } from "../domain/errors.js";
import { deleteMessagesBelow, readMessages } from "../store/queues.js";
import { authenticateClient, type QueueContext } from "./context.js";

const LABEL = rpcLabel(queue.QueueServiceService.dequeue);

/**
 * Dequeue: messages from `sequence_number_start` on (at most the configured maximum), after
 * deleting every message below it.
 */
export async function dequeue(
  ctx: QueueContext,
  request: queue.DequeueRequest,
): Promise<queue.DequeueResponse> {
  const { tbs, client, claim } = await authenticateClient(ctx, request.signed, queue.DequeueTbs, LABEL);
  const start = tbs.sequenceNumberStart;
  if (start > client.nextSeq) {
    throw malformed("tbs.sequence_number_start", `beyond the queue's next sequence number ${client.nextSeq}`);
  }
  const max =
    tbs.maxMessages === 0 || tbs.maxMessages > ctx.limits.maxDequeue
      ? ctx.limits.maxDequeue
      : tbs.maxMessages;
  const rows = await transaction(ctx.db, async (tx) => {
    await claim(tx);
    if (start > 0n) await deleteMessagesBelow(tx, client.clientId, start);
    return readMessages(tx, client.clientId, start, max);
  });
  // Fewer rows than asked for: nothing is left. Otherwise what follows the last one, counted by
  // sequence number (an upper bound: a full queue's dropped messages leave gaps, expiry holes).
  const last = rows[rows.length - 1]?.seq;
  const remaining = rows.length < max || last === undefined ? 0n : client.nextSeq - last - 1n;
  return {
    messages: rows.map((r) => ({ sequenceNumber: r.seq, ciphertext: r.message })),
    remaining: remaining > 0n ? remaining : 0n,
  };
}
