import { toHex } from "@phoenix/crypto";
import { events } from "@phoenix/proto";
import { busTopology } from "@phoenix/runtime/bus";
import { transaction } from "@phoenix/runtime/db";
import { NotFoundError, queueFull } from "@phoenix/runtime/errors";
import type { AuthContext } from "../context.js";
import { dayCeil } from "../domain/coarse-time.js";
import { enqueueOffer } from "../domain/connection-queue.js";
import { malformed, tooLarge } from "../domain/errors.js";
import { Limits } from "../domain/limits.js";
import type { PackageOwner } from "../store/connection-packages.js";
import { countMessages, findQueue, insertMessages, updateRatchet } from "../store/connection-queues.js";
import { limitTarget } from "./rate-limit.js";

const CONNECTION_QUEUE_ACTIVITY = busTopology().subjects.connectionQueueActivityRoot;

/** The core bus subject that wakes listeners of a connection queue on any replica. */
export function queueActivitySubject(queueId: Uint8Array): string {
  return `${CONNECTION_QUEUE_ACTIVITY}${toHex(queueId)}`;
}

/**
 * Drops a connection offer into the queue of `owner` (shared by both enqueue RPCs): size limit,
 * per-queue rate limit, queue-full limit (refused, nothing stored), queue-ratchet encryption with
 * an expiry day for the offer, then a wake-up for listeners. `exists` checks the owner (e.g. the
 * handle is live) inside the transaction.
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
  await limitTarget(
    ctx,
    ctx.limits.enqueuePerTarget,
    "handleHash" in owner ? "handle queue" : "client queue",
    "handleHash" in owner
      ? owner.handleHash
      : Buffer.concat([owner.client.userUuid, owner.client.clientUuid]),
  );
  const now = ctx.now();
  // Offers expire at the end of a whole UTC day: the day says no more about the sender than that.
  const expiresAt = dayCeil(now + ctx.config.AS_QUEUE_MESSAGE_TTL);
  const latest = await transaction(ctx.db, async (tx) => {
    const queue = (await exists(tx)) ? await findQueue(tx, owner, true) : undefined;
    if (!queue) throw new NotFoundError("no such connection queue");
    // Counted under the queue row's lock: concurrent offers cannot overshoot the cap.
    const queued = await countMessages(tx, queue.queueId);
    if (queued >= ctx.config.AS_QUEUE_MAX_MESSAGES) {
      throw queueFull("connection queue", ctx.config.AS_QUEUE_MAX_MESSAGES, "AS_QUEUE_MAX_MESSAGES");
    }
    const update = enqueueOffer(queue, offer, now, ctx.config.AS_QUEUE_KEY_UPDATE_INTERVAL);
    await insertMessages(
      tx,
      queue.queueId,
      update.messages.map((m) => ({ ...m, expiresAt: m.offer ? expiresAt : null })),
    );
    await updateRatchet(tx, queue.queueId, update.ratchetState, update.nextSequence);
    return { queueId: queue.queueId, latest: update.nextSequence - 1n };
  });
  const activity = events.QueueActivity.encode({ latestSequenceNumber: latest.latest }).finish();
  // A lost wake-up only delays delivery until the listener's next reconnect; the offer is stored.
  await ctx.bus.notify(queueActivitySubject(latest.queueId), activity).catch((error: unknown) => {
    ctx.log.warn({ err: error }, "connection queue wake-up not published");
  });
}
