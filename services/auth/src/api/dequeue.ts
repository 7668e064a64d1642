import type { common } from "@phoenix/proto";
import type { Database } from "@phoenix/runtime/db";
import { NotFoundError } from "@phoenix/runtime/errors";
import type { AuthContext } from "../context.js";
import { checkSequenceStart, dequeueLimit } from "../domain/connection-queue.js";
import type { PackageOwner } from "../store/connection-packages.js";
import { countMessages, deleteMessagesBelow, findQueue, readMessages } from "../store/connection-queues.js";

/**
 * Dequeue by sequence number (shared by both dequeue RPCs, inside the request's transaction):
 * messages below `start` are deleted (the owner has processed them), then up to the limit from
 * `start` on are returned with the number remaining.
 */
export async function dequeueFrom(
  ctx: AuthContext,
  tx: Database,
  owner: PackageOwner,
  start: bigint,
  maxMessages: number,
): Promise<{ messages: common.QueueMessage[]; remaining: bigint }> {
  const queue = await findQueue(tx, owner, true);
  if (!queue) throw new NotFoundError("no such connection queue");
  checkSequenceStart(start, queue.nextSequence, "tbs.sequence_number_start");
  await deleteMessagesBelow(tx, queue.queueId, start);
  const limit = dequeueLimit(maxMessages, ctx.config.AS_DEQUEUE_MAX_MESSAGES);
  const messages = await readMessages(tx, queue.queueId, start, limit);
  const after = messages.length > 0 ? (messages[messages.length - 1]?.sequenceNumber ?? start) + 1n : start;
  const remaining = await countMessages(tx, queue.queueId, after);
  return { messages, remaining: BigInt(remaining) };
}
