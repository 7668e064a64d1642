import { toHex } from "@phoenix/crypto";
import { common, events } from "@phoenix/proto";
import { transaction } from "@phoenix/runtime/db";
import { NotFoundError } from "@phoenix/runtime/errors";
import type { AuthContext } from "../context.js";
import { enqueueOffer } from "../domain/connection-queue.js";
import { malformed, tooLarge } from "../domain/errors.js";
import { Limits } from "../domain/limits.js";
import type { PackageOwner } from "../store/connection-packages.js";
import {
  countMessages,
  enqueueBucketOf,
  findQueue,
  insertMessages,
  updateRatchet,
} from "../store/connection-queues.js";

/** The core bus subject that wakes listeners of a connection queue on any replica. */
export function queueActivitySubject(queueId: Uint8Array): string {
  return `phoenix.connection_queue_activity.${toHex(queueId)}`;
}

/**
 * Drops a connection offer into the queue of `owner` (shared by both enqueue RPCs): size limit,
 * per-queue rate limit, queue-full limit, queue-ratchet encryption, then a wake-up for listeners.
 * `exists` checks the owner (e.g. the handle is live) inside the transaction.
 */
export async function enqueueInto(
  ctx: AuthContext,
  owner: PackageOwner,
  offer: Uint8Array,
  exists: (tx: AuthContext["db"]) => Promise<boolean>,
): Promise<void> {
  if (offer.length === 0) throw malformed("connection_offer", "missing");
  if (offer.length > Limits.connectionOffer)
    throw tooLarge("connection_offer", Limits.connectionOffer, offer.length);
  const now = ctx.now();
  const latest = await transaction(ctx.db, async (tx) => {
    const queue = (await exists(tx)) ? await findQueue(tx, owner, true) : undefined;
    if (!queue) throw new NotFoundError("no such connection queue");
    // The per-queue limit lives on the locked queue row: shared by every replica.
    const bucket = ctx.limits.enqueuePerTarget.takeFrom(enqueueBucketOf(queue), now.getTime());
    const queued = await countMessages(tx, queue.queueId);
    if (queued >= ctx.config.AS_QUEUE_MAX_MESSAGES) {
      throw tooLarge(
        "connection queue",
        ctx.config.AS_QUEUE_MAX_MESSAGES,
        queued + 1,
        common.ErrorReason.ERROR_REASON_QUOTA,
      );
    }
    const update = enqueueOffer(queue, offer, now, ctx.config.AS_QUEUE_KEY_UPDATE_INTERVAL);
    await insertMessages(tx, queue.queueId, update.messages);
    await updateRatchet(tx, queue.queueId, update.ratchetState, update.nextSequence, bucket);
    return { queueId: queue.queueId, latest: update.nextSequence - 1n };
  });
  const activity = events.QueueActivity.encode({ latestSequenceNumber: latest.latest }).finish();
  // A lost wake-up only delays delivery until the listener's next reconnect; the offer is stored.
  await ctx.bus.notify(queueActivitySubject(latest.queueId), activity).catch((error: unknown) => {
    ctx.log.warn({ err: error }, "connection queue wake-up not published");
  });
}
