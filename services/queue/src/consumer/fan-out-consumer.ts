import { encodeQueueMessage, HpkePublicKey, type QueueRatchetSender, toHex } from "@phoenix/crypto";
import type { common, events } from "@phoenix/proto";
import type { BusMessage } from "@phoenix/runtime/bus";
import { type Database, transaction } from "@phoenix/runtime/db";
import type { Logger } from "@phoenix/runtime/log";
import { writeOutbox } from "@phoenix/runtime/outbox";
import {
  blocklistEntry,
  decodeFanOut,
  fanOutMarker,
  forwardRemote,
  MalformedFanOutError,
  type OutboundEvent,
  reportDeleted,
} from "../domain/fan-out.js";
import type { KeyRing } from "../domain/key-ring.js";
import { ceilTo, coarseStep, DAY, floorTo, HOUR } from "../domain/limits.js";
import type { ConfigKeyLookup, QueueConfigOpener } from "../domain/queue-config-opener.js";
import {
  keyUpdateDue,
  keyUpdateStamp,
  openRatchet,
  type RatchetUpdatePolicy,
  sealRatchet,
} from "../domain/queue-ratchet.js";
import type { StorageKeys } from "../domain/storage-keys.js";
import type { QsSubjects } from "../domain/subjects.js";
import {
  type LockedRecipient,
  lockRecipients,
  type RecipientState,
  saveRatchetStates,
} from "../store/clients.js";
import { insertFanOutMarkers } from "../store/fan-out-markers.js";
import { insertQueueMessages, type NewQueueMessage } from "../store/queues.js";

/** What the fan-out consumer needs. */
export interface FanOutContext {
  db: Database;
  domain: string;
  storage: StorageKeys;
  keys(): KeyRing | undefined;
  opener: QueueConfigOpener;
  subjects: QsSubjects;
  ratchetPolicy: RatchetUpdatePolicy;
  queuePolicy: QueuePolicy;
  logger: Logger;
  now(): number;
  /** Test hook: runs after the transaction committed, before the messages are acked. */
  afterCommit?: (() => Promise<void>) | undefined;
}

/**
 * Bounds of a client queue. A full queue drops further messages (see handleFanOutBatch); stored
 * messages expire `expiryMs` after they were enqueued (0: never).
 */
export interface QueuePolicy {
  maxDepth: number;
  expiryMs: number;
}

/** When a message enqueued at `now` expires (rounded up to 1/24 of the expiry, at most a day). */
export function messageExpiry(policy: QueuePolicy, now: number): Date | null {
  return policy.expiryMs > 0 ? ceilTo(now + policy.expiryMs, coarseStep(policy.expiryMs, DAY)) : null;
}

/** A queue that received messages in a batch: for wake-ups and push notifications. */
export interface Delivered {
  clientId: Uint8Array;
  latestSeq: bigint;
  /** Some message asked for a push notification. */
  notify: boolean;
  encryptedPushToken: Uint8Array | null;
  /** A Listen stream held the queue at enqueue time (no push then). */
  listening: boolean;
}

/** What a handled batch produced. */
export interface BatchOutcome {
  delivered: Delivered[];
  /** Events written to the outbox (queue-deleted reports, federation envelopes). */
  outbound: number;
  /** Fan-outs skipped because they were handled before (redeliveries). */
  duplicates: number;
  /** Messages enqueued. */
  enqueued: number;
  /** Messages dropped because their queue was full. */
  dropped: number;
}

interface LocalRecipient {
  reference: common.QsReference;
  clientId: Uint8Array | undefined;
}

interface Planned {
  fanOut: events.FanOut;
  marker: Uint8Array;
  local: LocalRecipient[];
  remote: Map<string, common.QsReference[]>;
}

/** A recipient queue's sender while the batch is encrypted. */
interface SenderState {
  sender: QueueRatchetSender;
  row: RecipientState;
  updated: boolean;
  added: number;
}

/** What encrypting a batch for its recipients produced, written in one go afterwards. */
interface EncryptedBatch {
  senders: Map<string, SenderState>;
  newMessages: NewQueueMessage[];
  outbound: OutboundEvent[];
  delivered: Map<string, Delivered>;
  dropped: number;
}

/** Times every message of a batch shares. */
interface BatchTimes {
  now: number;
  expiresAt: Date | null;
  keyUpdateAt: Date;
}

/**
 * Handles one batch of FanOut messages in one database transaction: per fan-out a keyed-hash
 * marker (inserted first, so a redelivered fan-out finds it and is skipped), per local recipient
 * the opened queue config, the blocklist check and the queue ratchet encryption under the next
 * sequence number (a key update first when due), per remote domain a FederationEnvelope and per
 * unknown queue a QueueDeleted report, both through the outbox.
 *
 * Full queues: the fan-out is asynchronous (the DS answered its sender long ago), so nobody can
 * be refused. A message for a queue holding `queuePolicy.maxDepth` messages is dropped and
 * counted (`dropped`, metric `qs_fanout_dropped_total`); the first drop of a run still takes a
 * sequence number, so the owner sees a gap in its sequence numbers where messages were lost
 * (the queue ratchet receiver skips it), and later drops of the run take none, so the gap stays
 * one wide whatever the flood. Key updates are never dropped (a lost one leaves the queue
 * unreadable): they may take a queue one past its cap.
 */
export async function handleFanOutBatch(
  ctx: FanOutContext,
  messages: readonly BusMessage[],
): Promise<BatchOutcome> {
  const planned = planFanOuts(ctx, messages);
  const outcome: BatchOutcome = { delivered: [], outbound: 0, duplicates: 0, enqueued: 0, dropped: 0 };
  if (planned.length === 0) return outcome;

  const now = ctx.now();
  const ring = ctx.keys();
  const configKey = (keyId: Uint8Array) => ring?.usableConfigKey(keyId, now);
  await transaction(ctx.db, async (tx) => {
    outcome.delivered = [];
    outcome.outbound = 0;
    outcome.duplicates = 0;
    outcome.enqueued = 0;
    outcome.dropped = 0;
    // Markers only need the retention sweep: the hour is enough, and no finer time is kept.
    const fresh = await insertFanOutMarkers(
      tx,
      planned.map((p) => p.marker),
      floorTo(now, HOUR),
    );
    const freshSet = new Set(fresh.map((marker) => toHex(marker)));
    const work = planned.filter((p) => freshSet.has(toHex(p.marker)));
    outcome.duplicates = planned.length - work.length;
    if (work.length === 0) return;

    const candidates = decryptRecipientConfigs(ctx, work, configKey);
    // Lock the recipients' rows (sorted: no deadlock between replicas) and read their state,
    // their config-sealing keys and their blocklists, in one statement.
    const rows = await lockRecipients(tx, candidates.sortedIds, new Date(now));
    const clients = new Map(rows.map((row) => [toHex(row.clientId), row]));
    verifyRecipientConfigs(ctx, candidates.pending, configKey, clients);
    const isBlocked = blocklistCheck(ctx, clients);
    const times = {
      now,
      expiresAt: messageExpiry(ctx.queuePolicy, now),
      keyUpdateAt: keyUpdateStamp(ctx.ratchetPolicy, now),
    };
    const batch = encryptBatch(ctx, work, clients, isBlocked, times);
    await storeBatch(ctx, tx, batch);
    outcome.delivered = [...batch.delivered.values()];
    outcome.outbound = batch.outbound.length;
    outcome.enqueued = batch.newMessages.length;
    outcome.dropped = batch.dropped;
  });
  await ctx.afterCommit?.();
  return outcome;
}

/**
 * Decodes the batch's fan-outs (a malformed one is dropped with a warning), skips fan-outs seen
 * twice in the batch and splits each one's recipients into local ones and remote domains.
 */
function planFanOuts(ctx: FanOutContext, messages: readonly BusMessage[]): Planned[] {
  const planned: Planned[] = [];
  const seen = new Set<string>();
  for (const message of messages) {
    let fanOut: events.FanOut;
    try {
      fanOut = decodeFanOut(message.data);
    } catch (error) {
      if (!(error instanceof MalformedFanOutError)) throw error;
      // Retrying cannot fix it: drop it (acked) and leave a trace.
      ctx.logger.warn({ err: error, seq: message.seq }, "dropping malformed fan-out");
      continue;
    }
    const marker = fanOutMarker(ctx.storage, fanOut.fanOutId);
    const markerHex = toHex(marker);
    if (seen.has(markerHex)) continue;
    seen.add(markerHex);
    const local: LocalRecipient[] = [];
    const remote = new Map<string, common.QsReference[]>();
    for (const reference of fanOut.recipients) {
      if (reference.domain === ctx.domain) local.push({ reference, clientId: undefined });
      else if (reference.domain.length > 0)
        remote.set(reference.domain, [...(remote.get(reference.domain) ?? []), reference]);
    }
    planned.push({ fanOut, marker, local, remote });
  }
  return planned;
}

/**
 * First pass over the local recipients' sealed queue configs: decrypts each one (or finds it in
 * the opener's cache) to learn the client id it names, without checking its signature yet — the
 * keys that may have signed it are read with the recipients' locked rows. Returns the named
 * client ids, sorted and without repeats, and the recipients whose config decrypted. Locking a
 * row whose config then fails verification changes nothing but the lock.
 */
function decryptRecipientConfigs(
  ctx: FanOutContext,
  work: readonly Planned[],
  configKey: ConfigKeyLookup,
): { sortedIds: Uint8Array[]; pending: LocalRecipient[] } {
  const ids = new Map<string, Uint8Array>();
  const pending: LocalRecipient[] = [];
  for (const p of work) {
    for (const r of p.local) {
      const result = ctx.opener.open(r.reference.sealedQueueConfig, configKey, () => undefined);
      if (result.kind !== "needs-key") continue;
      ids.set(toHex(result.clientId), result.clientId);
      pending.push(r);
    }
  }
  const sortedIds = [...ids.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, v]) => v);
  return { sortedIds, pending };
}

/**
 * Second pass: verifies each decrypted config against the keys that may have signed it (the
 * record's current auth key, then replaced ones in their grace period) and sets the recipient's
 * client id when it holds. Configs of unknown queues stay unopened (a QueueDeleted report).
 */
function verifyRecipientConfigs(
  ctx: FanOutContext,
  pending: readonly LocalRecipient[],
  configKey: ConfigKeyLookup,
  clients: ReadonlyMap<string, LockedRecipient>,
): void {
  const keys = new Map<string, Uint8Array[]>();
  const keysOf = (idHex: string) => {
    let list = keys.get(idHex);
    if (list === undefined) {
      const row = clients.get(idHex);
      if (row === undefined) return undefined;
      list = [row.authKey, ...row.previousAuthKeys];
      keys.set(idHex, list);
    }
    return list;
  };
  for (const r of pending) {
    const result = ctx.opener.open(r.reference.sealedQueueConfig, configKey, keysOf);
    if (result.kind === "open") r.clientId = result.clientId;
  }
}

/** Blocklist check against the locked rows' entries; entries are hashed only for queues that have any. */
function blocklistCheck(
  ctx: FanOutContext,
  clients: ReadonlyMap<string, LockedRecipient>,
): (clientId: Uint8Array, group: common.QualifiedGroupId | undefined) => boolean {
  const blocklists = new Map<string, Set<string>>();
  for (const [id, row] of clients) {
    if (row.blocklist.length > 0) blocklists.set(id, new Set(row.blocklist.map((entry) => toHex(entry))));
  }
  return (clientId, group) => {
    const entries = blocklists.get(toHex(clientId));
    return (
      entries !== undefined &&
      group !== undefined &&
      entries.has(toHex(blocklistEntry(ctx.storage, clientId, group)))
    );
  };
}

/**
 * Encrypts each fan-out for its local recipients (QueueDeleted reports for unknown queues,
 * nothing for queues that block the group) and wraps it for its remote domains.
 */
function encryptBatch(
  ctx: FanOutContext,
  work: readonly Planned[],
  clients: ReadonlyMap<string, RecipientState>,
  isBlocked: (clientId: Uint8Array, group: common.QualifiedGroupId | undefined) => boolean,
  times: BatchTimes,
): EncryptedBatch {
  const batch: EncryptedBatch = {
    senders: new Map(),
    newMessages: [],
    outbound: [],
    delivered: new Map(),
    dropped: 0,
  };
  const reportedAt = new Date(times.now);
  for (const p of work) {
    for (const r of p.local) {
      const row = r.clientId === undefined ? undefined : clients.get(toHex(r.clientId));
      if (row === undefined) {
        batch.outbound.push(reportDeleted(p.fanOut, r.reference, ctx.domain, reportedAt, ctx.subjects));
        continue;
      }
      if (isBlocked(row.clientId, p.fanOut.groupId)) continue;
      enqueueFor(ctx, batch, row, p.fanOut, times);
    }
    batch.outbound.push(...forwardRemote(p.fanOut, p.remote, ctx.domain, ctx.subjects.federationOutbound));
  }
  return batch;
}

/** Encrypts one fan-out for one queue: dropped when full, after a key update when one is due. */
function enqueueFor(
  ctx: FanOutContext,
  batch: EncryptedBatch,
  row: RecipientState,
  fanOut: events.FanOut,
  times: BatchTimes,
): void {
  const idHex = toHex(row.clientId);
  let state = batch.senders.get(idHex);
  if (state === undefined) {
    state = {
      sender: openRatchet(ctx.storage, row.clientId, row.encryptedRatchet),
      row,
      updated: false,
      added: 0,
    };
    batch.senders.set(idHex, state);
  }
  const { sender } = state;
  if (state.row.queueDepth + state.added >= ctx.queuePolicy.maxDepth) {
    batch.dropped++;
    if (!state.row.gapOpen) {
      // Take (and discard) one sequence number: the owner's ratchet sees the gap.
      sender.encrypt(fanOut.payload);
      state.row = { ...state.row, gapOpen: true };
      state.updated = true;
    }
    return;
  }
  const { now } = times;
  if (
    keyUpdateDue(ctx.ratchetPolicy, sender, state.row.lastKeyUpdateAt.getTime(), now, state.row.keyUpdateDue)
  ) {
    const update = sender.rotate(HpkePublicKey.fromBytes(row.queueKey));
    batch.newMessages.push({
      clientId: row.clientId,
      seq: BigInt(update.sequenceNumber),
      message: encodeQueueMessage(update),
      expiresAt: null,
    });
    state.added++;
    state.row = { ...state.row, lastKeyUpdateAt: times.keyUpdateAt, keyUpdateDue: false };
  }
  const m = sender.encrypt(fanOut.payload);
  batch.newMessages.push({
    clientId: row.clientId,
    seq: BigInt(m.sequenceNumber),
    message: encodeQueueMessage(m),
    expiresAt: times.expiresAt,
  });
  state.added++;
  if (state.row.gapOpen) state.row = { ...state.row, gapOpen: false };
  state.updated = true;
  const d = batch.delivered.get(idHex) ?? {
    clientId: row.clientId,
    latestSeq: 0n,
    notify: false,
    encryptedPushToken: row.encryptedPushToken,
    listening: row.listenerUntil !== null && row.listenerUntil.getTime() > now,
  };
  d.latestSeq = BigInt(m.sequenceNumber);
  d.notify ||= !fanOut.suppressNotifications;
  batch.delivered.set(idHex, d);
}

/** Writes the batch: the messages, the queues' ratchet states and the outbox events. */
async function storeBatch(ctx: FanOutContext, tx: Database, batch: EncryptedBatch): Promise<void> {
  if (batch.newMessages.length > 0) await insertQueueMessages(tx, batch.newMessages);
  const updates = [...batch.senders.values()].filter((s) => s.updated);
  await saveRatchetStates(
    tx,
    updates.map((u) => ({
      clientId: u.row.clientId,
      encryptedRatchet: sealRatchet(ctx.storage, u.row.clientId, u.sender),
      nextSeq: BigInt(u.sender.nextSequenceNumber),
      lastKeyUpdateAt: u.row.lastKeyUpdateAt,
      keyUpdateDue: u.row.keyUpdateDue,
      added: u.added,
      gapOpen: u.row.gapOpen,
    })),
  );
  if (batch.outbound.length > 0) await writeOutbox(tx, batch.outbound, ctx.storage.outbox);
}
