import { encodeQueueMessage, HpkePublicKey, type QueueRatchetSender, toHex } from "@phoenix/crypto";
import type { common, events } from "@phoenix/proto";
import type { BusMessage } from "@phoenix/runtime/bus";
import { type Database, transaction } from "@phoenix/runtime/db";
import type { Logger } from "@phoenix/runtime/log";
import { writeOutbox } from "@phoenix/runtime/outbox";
import { inArray, sql } from "drizzle-orm";
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
import type { QueueConfigOpener } from "../domain/queue-config-opener.js";
import {
  keyUpdateDue,
  keyUpdateStamp,
  openRatchet,
  type RatchetUpdatePolicy,
  sealRatchet,
} from "../domain/queue-ratchet.js";
import type { StorageKeys } from "../domain/storage-keys.js";
import type { QsSubjects } from "../domain/subjects.js";
import { sealingKeysOf } from "../store/records-store.js";
import { qsBlocklist, qsClients, qsHandledFanOuts, qsMessages } from "../store/schema.js";

/** What the fan-out consumer needs. */
export interface FanOutDeps {
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

type ClientState = {
  clientId: Uint8Array;
  authKey: Uint8Array;
  queueKey: Uint8Array;
  encryptedRatchet: Uint8Array;
  lastKeyUpdateAt: Date;
  keyUpdateDue: boolean;
  encryptedPushToken: Uint8Array | null;
  listenerUntil: Date | null;
  queueDepth: number;
  gapOpen: boolean;
};

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
  deps: FanOutDeps,
  messages: readonly BusMessage[],
): Promise<BatchOutcome> {
  const planned: Planned[] = [];
  const seen = new Set<string>();
  for (const message of messages) {
    let fanOut: events.FanOut;
    try {
      fanOut = decodeFanOut(message.data);
    } catch (error) {
      if (!(error instanceof MalformedFanOutError)) throw error;
      // Retrying cannot fix it: drop it (acked) and leave a trace.
      deps.logger.warn({ err: error, seq: message.seq }, "dropping malformed fan-out");
      continue;
    }
    const marker = fanOutMarker(deps.storage, fanOut.fanOutId);
    const markerHex = toHex(marker);
    if (seen.has(markerHex)) continue;
    seen.add(markerHex);
    const local: LocalRecipient[] = [];
    const remote = new Map<string, common.QsReference[]>();
    for (const reference of fanOut.recipients) {
      if (reference.domain === deps.domain) local.push({ reference, clientId: undefined });
      else if (reference.domain.length > 0)
        remote.set(reference.domain, [...(remote.get(reference.domain) ?? []), reference]);
    }
    planned.push({ fanOut, marker, local, remote });
  }
  const outcome: BatchOutcome = { delivered: [], outbound: 0, duplicates: 0, enqueued: 0, dropped: 0 };
  if (planned.length === 0) return outcome;

  const now = deps.now();
  const ring = deps.keys();
  const configKey = (keyId: Uint8Array) => ring?.usableConfigKey(keyId, now);
  await transaction(deps.db, async (tx) => {
    outcome.delivered = [];
    outcome.outbound = 0;
    outcome.duplicates = 0;
    outcome.enqueued = 0;
    outcome.dropped = 0;
    // Markers only need the retention sweep: the hour is enough, and no finer time is kept.
    const handledAt = floorTo(now, HOUR);
    const fresh = await tx
      .insert(qsHandledFanOuts)
      .values(planned.map((p) => ({ marker: p.marker, handledAt })))
      .onConflictDoNothing()
      .returning({ marker: qsHandledFanOuts.marker });
    const freshSet = new Set(fresh.map((f) => toHex(f.marker)));
    const work = planned.filter((p) => freshSet.has(toHex(p.marker)));
    outcome.duplicates = planned.length - work.length;
    if (work.length === 0) return;

    // Open every sealed config; ids whose record key is not known yet are loaded in one read.
    const authKeys = new Map<string, Uint8Array[]>();
    const pending: LocalRecipient[] = [];
    for (const p of work) for (const r of p.local) pending.push(r);
    const opened = new Map<LocalRecipient, Uint8Array>();
    for (let round = 0; round < 2 && pending.length > 0; round++) {
      const missing = new Map<string, Uint8Array>();
      for (const r of pending.splice(0)) {
        const result = deps.opener.open(r.reference.sealedQueueConfig, configKey, (id) => authKeys.get(id));
        if (result.kind === "open") opened.set(r, result.clientId);
        else if (result.kind === "needs-key" && round === 0) {
          missing.set(toHex(result.clientId), result.clientId);
          pending.push(r);
        }
      }
      if (missing.size > 0) {
        const keys = await sealingKeysOf(tx, [...missing.values()], new Date(now));
        for (const [id, list] of keys) authKeys.set(id, list);
      }
    }
    for (const [r, clientId] of opened) r.clientId = clientId;

    // Lock the recipients' rows (sorted: no deadlock between replicas) and read their state.
    const ids = new Map<string, Uint8Array>();
    for (const r of opened.values()) ids.set(toHex(r), r);
    const sortedIds = [...ids.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, v]) => v);
    const rows: ClientState[] =
      sortedIds.length === 0
        ? []
        : await tx
            .select({
              clientId: qsClients.clientId,
              authKey: qsClients.authKey,
              queueKey: qsClients.queueKey,
              encryptedRatchet: qsClients.encryptedRatchet,
              lastKeyUpdateAt: qsClients.lastKeyUpdateAt,
              keyUpdateDue: qsClients.keyUpdateDue,
              encryptedPushToken: qsClients.encryptedPushToken,
              listenerUntil: qsClients.listenerUntil,
              queueDepth: qsClients.queueDepth,
              gapOpen: qsClients.gapOpen,
            })
            .from(qsClients)
            .where(inArray(qsClients.clientId, sortedIds))
            .orderBy(qsClients.clientId)
            .for("update");
    const clients = new Map(rows.map((row) => [toHex(row.clientId), row]));

    // Blocklist: one read for the batch's queues; entries are hashed only for queues that have any.
    const blocklists = new Map<string, Set<string>>();
    if (sortedIds.length > 0) {
      const hits = await tx
        .select({ clientId: qsBlocklist.clientId, entry: qsBlocklist.entry })
        .from(qsBlocklist)
        .where(inArray(qsBlocklist.clientId, sortedIds));
      for (const h of hits) {
        const id = toHex(h.clientId);
        blocklists.set(id, (blocklists.get(id) ?? new Set()).add(toHex(h.entry)));
      }
    }
    const isBlocked = (clientId: Uint8Array, group: common.QualifiedGroupId | undefined): boolean => {
      const entries = blocklists.get(toHex(clientId));
      return (
        entries !== undefined &&
        group !== undefined &&
        entries.has(toHex(blocklistEntry(deps.storage, clientId, group)))
      );
    };

    const senders = new Map<
      string,
      { sender: QueueRatchetSender; row: ClientState; updated: boolean; added: number }
    >();
    const newMessages: { clientId: Uint8Array; seq: bigint; message: Uint8Array; expiresAt: Date | null }[] =
      [];
    const expiresAt = messageExpiry(deps.queuePolicy, now);
    const keyUpdateAt = keyUpdateStamp(deps.ratchetPolicy, now);
    const outbound: OutboundEvent[] = [];
    const delivered = new Map<string, Delivered>();
    const reportedAt = new Date(now);
    for (const p of work) {
      for (const r of p.local) {
        const row = r.clientId === undefined ? undefined : clients.get(toHex(r.clientId));
        if (row === undefined) {
          outbound.push(reportDeleted(p.fanOut, r.reference, deps.domain, reportedAt, deps.subjects));
          continue;
        }
        const idHex = toHex(row.clientId);
        if (isBlocked(row.clientId, p.fanOut.groupId)) continue;
        let state = senders.get(idHex);
        if (state === undefined) {
          state = {
            sender: openRatchet(deps.storage, row.clientId, row.encryptedRatchet),
            row,
            updated: false,
            added: 0,
          };
          senders.set(idHex, state);
        }
        const { sender } = state;
        if (state.row.queueDepth + state.added >= deps.queuePolicy.maxDepth) {
          outcome.dropped++;
          if (!state.row.gapOpen) {
            // Take (and discard) one sequence number: the owner's ratchet sees the gap.
            sender.encrypt(p.fanOut.payload);
            state.row = { ...state.row, gapOpen: true };
            state.updated = true;
          }
          continue;
        }
        if (
          keyUpdateDue(
            deps.ratchetPolicy,
            sender,
            state.row.lastKeyUpdateAt.getTime(),
            now,
            state.row.keyUpdateDue,
          )
        ) {
          const update = sender.rotate(HpkePublicKey.fromBytes(row.queueKey));
          newMessages.push({
            clientId: row.clientId,
            seq: BigInt(update.sequenceNumber),
            message: encodeQueueMessage(update),
            expiresAt: null,
          });
          state.added++;
          state.row = { ...state.row, lastKeyUpdateAt: keyUpdateAt, keyUpdateDue: false };
        }
        const m = sender.encrypt(p.fanOut.payload);
        newMessages.push({
          clientId: row.clientId,
          seq: BigInt(m.sequenceNumber),
          message: encodeQueueMessage(m),
          expiresAt,
        });
        state.added++;
        state.row = { ...state.row, gapOpen: false };
        state.updated = true;
        const d = delivered.get(idHex) ?? {
          clientId: row.clientId,
          latestSeq: 0n,
          notify: false,
          encryptedPushToken: row.encryptedPushToken,
          listening: row.listenerUntil !== null && row.listenerUntil.getTime() > now,
        };
        d.latestSeq = BigInt(m.sequenceNumber);
        d.notify ||= !p.fanOut.suppressNotifications;
        delivered.set(idHex, d);
      }
      outbound.push(...forwardRemote(p.fanOut, p.remote, deps.domain, deps.subjects.federationOutbound));
    }

    if (newMessages.length > 0) {
      // Few statements for the whole batch, never one per message: the messages as multi-row
      // inserts (bytea travels as binary parameters), the ratchet states as one unnest update.
      for (let i = 0; i < newMessages.length; i += 1000) {
        const rows = newMessages
          .slice(i, i + 1000)
          .map(
            (m) =>
              sql`(${m.clientId}, ${String(m.seq)}::int8, ${m.message}, ${m.expiresAt?.toISOString() ?? null}::timestamptz)`,
          );
        await tx.execute(
          sql`insert into ${qsMessages} (client_id, seq, message, expires_at) values ${sql.join(rows, sql`, `)}`,
        );
      }
    }
    const updates = [...senders.values()].filter((s) => s.updated);
    if (updates.length > 0) {
      // The depth grows by what was stored: relative, so a concurrent Dequeue's decrement holds.
      await tx.execute(sql`
        update ${qsClients} as c set
          encrypted_ratchet = v.ratchet, next_seq = v.next_seq,
          last_key_update_at = v.updated_at, key_update_due = v.due,
          queue_depth = c.queue_depth + v.added, gap_open = v.gap
        from unnest(
          ${sql.param(updates.map((u) => u.row.clientId))}::bytea[],
          ${sql.param(updates.map((u) => sealRatchet(deps.storage, u.row.clientId, u.sender)))}::bytea[],
          ${sql.param(updates.map((u) => String(u.sender.nextSequenceNumber)))}::int8[],
          ${sql.param(updates.map((u) => u.row.lastKeyUpdateAt.toISOString()))}::timestamptz[],
          ${sql.param(updates.map((u) => u.row.keyUpdateDue))}::boolean[],
          ${sql.param(updates.map((u) => u.added))}::int4[],
          ${sql.param(updates.map((u) => u.row.gapOpen))}::boolean[]
        ) as v(client_id, ratchet, next_seq, updated_at, due, added, gap)
        where c.client_id = v.client_id`);
    }
    if (outbound.length > 0) await writeOutbox(tx, outbound, deps.storage.outbox);
    outcome.delivered = [...delivered.values()];
    outcome.outbound = outbound.length;
    outcome.enqueued = newMessages.length;
  });
  await deps.afterCommit?.();
  return outcome;
}
