// Receiving: the AS connection queues and the QS queue, by dequeue or live listening; each
// message is decrypted with its queue ratchet and its effects persisted with the queue position.
import { HpkeKeyPair, handleHash, SigningKey, toHex } from "@phoenix/crypto";
import { auth, type common, queue } from "@phoenix/proto";
import { AS, QS } from "../constants.js";
import type { ClientCore } from "../core/client-core.js";
import type { StoredHandle } from "../core/queues.js";
import { type Listener, type ListenOptions, runQueueListener } from "../listener.js";
import { hexBytes } from "../protocol/codecs.js";
import { connectionQueueContext, mlsGroupId, signRequest } from "../protocol/helpers.js";
import type { SyncResult } from "../types.js";
import { commitPending, recordRequiredRemovals } from "./commits.js";
import { receiveOffer } from "./connections.js";
import { sendProfileNotices } from "./member-profiles.js";
import { receiveMls } from "./mls-messages.js";
import { receiveWelcome } from "./welcome.js";

/**
 * Fetches and processes everything queued for this client: connection offers from the AS
 * connection queue, group messages, commits and Welcomes from the QS queue. Then commits any
 * self-remove proposals that are waiting in a group.
 */
export async function sync(core: ClientCore): Promise<SyncResult> {
  const result: SyncResult = { processed: 0, errors: [] };
  await drainConnectionQueue(core, result);
  for (const h of core.queues.storedHandles()) await drainHandleQueue(core, h, result);
  const pending = new Set<string>();
  await drainQsQueue(core, result, pending);
  for (const id of pending) await commitPending(core, id, result);
  await sendProfileNotices(core, result);
  return result;
}

/**
 * Listens live on the QS queue and the AS connection queue: everything that arrives is
 * processed (and persisted) at once, then acknowledged. The streams re-open after failures.
 */
export function listen(
  core: ClientCore,
  serial: <T>(fn: () => Promise<T>) => Promise<T>,
  options: ListenOptions = {},
): Listener {
  const report = (errors: string[]) => {
    for (const e of errors) options.onError?.(new Error(e));
  };
  const qs = runQueueListener<queue.ListenRequest, queue.ListenResponse>(
    {
      open: () => core.transport.queue.listen(),
      init: async () => ({
        request: {
          $case: "init",
          value: await core.identity.qsSigned(queue.ListenTbs, QS.listen, {
            sequenceNumberStart: core.queues.seq("qs"),
          }),
        },
      }),
      ack: (upTo) => ({ request: { $case: "ack", value: { upToSequenceNumber: upTo } } }),
      event: (res) => res.event,
      handle: (m) =>
        serial(async () => {
          const result: SyncResult = { processed: 0, errors: [] };
          const pending = new Set<string>();
          await processQsMessage(core, m, result, pending);
          for (const id of pending) await commitPending(core, id, result);
          await sendProfileNotices(core, result);
          report(result.errors);
        }),
    },
    options,
  );
  const as = runQueueListener<auth.ListenConnectionOffersRequest, auth.ListenConnectionOffersResponse>(
    {
      open: () => core.transport.auth.listenConnectionOffers(),
      init: async () => ({
        request: {
          $case: "init",
          value: await core.identity.asSigned(auth.ListenConnectionOffersTbs, AS.listenConnectionOffers, {
            sequenceNumberStart: core.queues.seq("as"),
          }),
        },
      }),
      ack: (upTo) => ({ request: { $case: "ack", value: { upToSequenceNumber: upTo } } }),
      event: (res) => res.event,
      handle: (m) =>
        serial(async () => {
          const result: SyncResult = { processed: 0, errors: [] };
          await processOfferMessage(core, m, result);
          report(result.errors);
        }),
    },
    options,
  );
  return {
    async stop() {
      await Promise.all([qs.stop(), as.stop()]);
    },
  };
}

/** Dequeues and processes the client's AS connection queue. */
export async function drainConnectionQueue(core: ClientCore, result: SyncResult): Promise<void> {
  for (let page = 0; page < 100; page++) {
    const next = core.queues.seq("as");
    const res = await core.transport.auth.dequeueConnectionOffers({
      signed: await core.identity.asSigned(auth.DequeueConnectionOffersTbs, AS.dequeueConnectionOffers, {
        sequenceNumberStart: next,
        maxMessages: 0,
      }),
    });
    for (const m of res.messages) await processOfferMessage(core, m, result);
    if (res.remaining === 0n || res.messages.length === 0) return;
  }
}

/** Dequeues and processes the connection queue of one of this client's handles. */
export async function drainHandleQueue(core: ClientCore, h: StoredHandle, result: SyncResult): Promise<void> {
  const key = HpkeKeyPair.fromPrivateBytes(hexBytes(h.queueKey));
  const handleKey = SigningKey.fromSeed(hexBytes(h.keySeed));
  const hash = handleHash(h.handle);
  const name = `handle:${h.handle}`;
  for (let page = 0; page < 100; page++) {
    const next = core.queues.seq(name);
    const res = await core.transport.auth.dequeueHandleConnectionOffers({
      signed: await signRequest(
        auth.DequeueHandleConnectionOffersTbs,
        AS.dequeueHandleConnectionOffers,
        { sequenceNumberStart: next, maxMessages: 0 },
        handleKey,
        { $case: "handleHash", value: hash },
      ),
    });
    for (const m of res.messages) {
      if (m.sequenceNumber < core.queues.seq(name)) continue;
      // A handle's queue ratchet is bound to the handle hash.
      await core.queues.process(name, key, hash, m, async (payload) => {
        if (payload?.content?.$case !== "connectionOffer") return;
        try {
          await receiveOffer(core, payload.content.value);
        } catch (error) {
          result.errors.push(`connection offer to ${h.handle}: ${(error as Error).message}`);
        }
      });
      result.processed++;
    }
    if (res.remaining === 0n || res.messages.length === 0) return;
  }
}

/** Dequeues and processes the client's QS queue; groups with work left go into `pending`. */
export async function drainQsQueue(
  core: ClientCore,
  result: SyncResult,
  pending: Set<string>,
): Promise<void> {
  for (let page = 0; page < 100; page++) {
    const next = core.queues.seq("qs");
    const res = await core.transport.queue.dequeue({
      signed: await core.identity.qsSigned(queue.DequeueTbs, QS.dequeue, {
        sequenceNumberStart: next,
        maxMessages: 0,
      }),
    });
    for (const m of res.messages) await processQsMessage(core, m, result, pending);
    if (res.remaining === 0n || res.messages.length === 0) return;
  }
}

/** Processes one QS queue message unless it was processed before (redelivery). */
export async function processQsMessage(
  core: ClientCore,
  m: common.QueueMessage,
  result: SyncResult,
  pending: Set<string>,
): Promise<void> {
  if (m.sequenceNumber < core.queues.seq("qs")) return;
  await core.queues.process("qs", core.identity.qsQueueKey, core.account.qsClientId, m, async (payload) => {
    if (payload === undefined) return;
    try {
      await receivePayload(core, payload, pending);
    } catch (error) {
      result.errors.push(`${payload.content?.$case ?? "empty"}: ${(error as Error).message}`);
    }
  });
  result.processed++;
}

/** Processes one message of the client's AS connection queue unless it was processed before. */
export async function processOfferMessage(
  core: ClientCore,
  m: common.QueueMessage,
  result: SyncResult,
): Promise<void> {
  if (m.sequenceNumber < core.queues.seq("as")) return;
  const context = connectionQueueContext({ client: core.account });
  await core.queues.process("as", core.identity.connectionQueueKey, context, m, async (payload) => {
    if (payload?.content?.$case !== "connectionOffer") return;
    try {
      await receiveOffer(core, payload.content.value);
    } catch (error) {
      result.errors.push(`connection offer: ${(error as Error).message}`);
    }
  });
  result.processed++;
}

/** Dispatches a decrypted QS payload: a Welcome, an MLS message, or a RequiredRemovals notice. */
export async function receivePayload(
  core: ClientCore,
  payload: common.QueuePayload,
  pending: Set<string>,
): Promise<void> {
  const content = payload.content;
  if (content === undefined) return;
  if (content.$case === "welcomeBundle") return receiveWelcome(core, content.value, pending);
  if (content.$case === "mlsMessage") return receiveMls(core, content.value, pending);
  if (content.$case === "requiredRemovals") {
    // DS-induced removals (inactive clients, deleted queues): the next commit must carry them.
    const notice = content.value;
    if (notice.groupId === undefined) return;
    const id = toHex(mlsGroupId(notice.groupId));
    recordRequiredRemovals(
      core,
      id,
      notice.epoch,
      notice.removals.map((r) => r.leafIndex),
    );
    pending.add(id);
  }
}
