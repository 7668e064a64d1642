import { EventEmitter } from "node:events";
import { openMessage, type PayloadSealer, sealMessage } from "@phoenix/crypto";
import { and, asc, count, eq, gt, gte, inArray, lt, lte, min, type SQL, sql } from "drizzle-orm";
import type { Database } from "../db/types.js";
import {
  InFlight,
  type ResolvedConsumerOptions,
  type ResolvedLifecycle,
  resolveConsumerOptions,
  resolveLifecycle,
  resolveStreamConfig,
  retryDelay,
  userHeaders,
  Wakeup,
} from "./consumer-support.js";
import {
  consumers as consumerTable,
  ensureEmbeddedBusSchema,
  messages,
  pending,
  streams,
} from "./embedded-schema.js";
import {
  BusClosedError,
  BusOptionsError,
  StreamConfigError,
  StreamFullError,
  StreamNotFoundError,
} from "./errors.js";
import { assertSubject, matchesSubject, patternsOverlap, subjectMatcher } from "./subject.js";
import type {
  Bus,
  BusLifecycleOptions,
  BusMessage,
  ConsumerLag,
  ConsumerOptions,
  MessageHandler,
  NotificationHandler,
  PublishAck,
  PublishOptions,
  StreamConfig,
  StreamRetention,
  Subscription,
} from "./types.js";

export interface EmbeddedBusOptions extends BusLifecycleOptions {
  /** Where messages and delivery state are stored (PGlite in the all-in-one homeserver, or pg). */
  db: Database;
  /**
   * How often an idle consumer looks for work nobody in this process announced (default 1 s).
   * In-process publishes, failures and due redeliveries wake consumers without waiting for it;
   * it matters only when other processes publish into the same Postgres database.
   */
  pollIntervalMs?: number;
  /**
   * Seals message bodies and headers at rest (bound to their dedupe id and subject); opened when
   * claimed. Acknowledged messages are deleted, but deleted rows survive in the database files and
   * WAL until overwritten, so without a sealer a copy of the data directory yields past messages.
   * Messages stored unsealed (by an earlier version or without a sealer) are delivered as they are.
   */
  sealer?: PayloadSealer;
}

/** Rows looked at per claim when searching for messages that match a consumer's filter. */
const SCAN_LIMIT = 1000;
/** Messages after a durable's cursor that `consumerLag` reads (a larger backlog reads as this many). */
const LAG_SCAN_LIMIT = 10_000;
/** Advisory lock key serialising stream definitions ("phnxstrm"), so overlaps are caught. */
const STREAM_LOCK_KEY = 0x70686e787374726dn;

/**
 * Wake-ups shared by every bus instance over the same database client in this process: a
 * publish on one instance wakes the consumers of all of them at once, and notifications reach
 * listeners of all of them (like replicas on one NATS server).
 */
const hubs = new WeakMap<object, EventEmitter>();

function hubOf(db: Database): EventEmitter {
  // Two drizzle handles over one PGlite instance or pg pool share the underlying `$client`.
  const key = ((db as { $client?: unknown }).$client as object | undefined) ?? db;
  let hub = hubs.get(key);
  if (!hub) {
    hub = new EventEmitter();
    hub.setMaxListeners(0);
    hubs.set(key, hub);
  }
  return hub;
}

const streamEvent = (stream: string): string => `stream:${stream}`;
const NOTIFY_EVENT = "notify";

/**
 * Creates the embedded bus: the same contract as the NATS one, with every message and every
 * consumer's delivery state stored in `db` (tables in the `phoenix_bus` schema, created here), so
 * what a publish acknowledged survives a crash. Consumers are woken in-process; several instances
 * over one database share durables (each message goes to one of them).
 */
export async function createEmbeddedBus(options: EmbeddedBusOptions): Promise<Bus> {
  const lifecycle = resolveLifecycle(options);
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  if (!Number.isFinite(pollIntervalMs) || pollIntervalMs <= 0) {
    throw new BusOptionsError(`pollIntervalMs must be positive, got ${pollIntervalMs}`);
  }
  await ensureEmbeddedBusSchema(options.db);
  return new EmbeddedBus(options.db, { ...lifecycle, pollIntervalMs, sealer: options.sealer });
}

interface EmbeddedBusSettings extends ResolvedLifecycle {
  pollIntervalMs: number;
  sealer: PayloadSealer | undefined;
}

interface StreamRow {
  name: string;
  subjects: string[];
  retention: StreamRetention;
  duplicateWindowMs: number;
  maxAgeMs: number;
  maxBytes: number;
  maxMsgs: number;
}

class EmbeddedBus implements Bus {
  readonly #db: Database;
  readonly #hub: EventEmitter;
  readonly #settings: EmbeddedBusSettings;
  readonly #subscriptions = new Set<Subscription>();
  /** When this instance last pruned each stream of messages older than its max age. */
  readonly #prunedAt = new Map<string, number>();
  /** Durables declared or consumed through this instance (see `consumerLag`), by stream and name. */
  readonly #durables = new Map<string, { stream: string; durable: string }>();
  #closed: Promise<void> | undefined;

  constructor(db: Database, settings: EmbeddedBusSettings) {
    this.#db = db;
    this.#hub = hubOf(db);
    this.#settings = settings;
  }

  async ensureStream(config: StreamConfig): Promise<void> {
    this.#assertOpen();
    const resolved = resolveStreamConfig(config, this.#settings.streamLimits);
    const { durables, ...row } = resolved;
    for (const durable of durables) this.#remember(row.name, durable.name);
    await this.#db.transaction(async (tx) => {
      await tx.execute(sql`SELECT pg_advisory_xact_lock(${STREAM_LOCK_KEY.toString()}::bigint)`);
      const others = await tx.select({ name: streams.name, subjects: streams.subjects }).from(streams);
      for (const other of others) {
        if (other.name === config.name) continue;
        const clash = config.subjects.find((s) => other.subjects.some((o) => patternsOverlap(s, o)));
        if (clash) {
          throw new StreamConfigError(
            `stream ${config.name}: subject ${clash} overlaps stream ${other.name}`,
          );
        }
      }
      await tx
        .insert(streams)
        .values(row)
        .onConflictDoUpdate({
          target: streams.name,
          set: {
            subjects: row.subjects,
            retention: row.retention,
            duplicateWindowMs: row.duplicateWindowMs,
            maxAgeMs: row.maxAgeMs,
            maxBytes: row.maxBytes,
            maxMsgs: row.maxMsgs,
          },
        });
      for (const durable of durables) {
        if (row.retention === "workqueue") {
          await assertNoOverlap(tx, row.name, durable.name, durable.filterSubject);
        }
        await tx
          .insert(consumerTable)
          .values({ stream: row.name, durable: durable.name, filterSubject: durable.filterSubject ?? null })
          .onConflictDoNothing();
      }
      // A stream of an earlier version (limits retention) still holds what every durable handled.
      if (row.retention !== "limits") await dropHandled(tx, row.name);
    });
  }

  async publish(subject: string, data: Uint8Array, options: PublishOptions): Promise<PublishAck> {
    this.#assertOpen();
    assertSubject(subject);
    if (options.id.length === 0) throw new BusOptionsError("publish needs a non-empty dedupe id");
    const stream = await this.#streamFor(subject);
    const { sealer } = this.#settings;
    const stored = sealer
      ? {
          data: sealMessage(sealer, options.id, subject, { data, headers: userHeaders(options.headers) }),
          headers: {},
          sealed: true,
        }
      : { data, headers: userHeaders(options.headers), sealed: false };
    const pruneDue =
      stream.maxAgeMs > 0 && Date.now() - (this.#prunedAt.get(stream.name) ?? 0) > pruneEveryMs(stream);
    const ack = await this.#db.transaction(async (tx) => {
      // The stream row lock orders publishes: sequences commit in order, and a dedupe id is
      // checked and stored by one publisher at a time.
      const [locked] = await tx
        .select({ lastSeq: streams.lastSeq })
        .from(streams)
        .where(eq(streams.name, stream.name))
        .for("update");
      if (!locked) throw new StreamNotFoundError(`stream ${stream.name} does not exist`);
      const [seen] = await tx
        .select({ seq: messages.seq })
        .from(messages)
        .where(
          and(
            eq(messages.stream, stream.name),
            eq(messages.msgId, options.id),
            gt(
              messages.publishedAt,
              sql`now() - ${stream.duplicateWindowMs}::bigint * interval '1 millisecond'`,
            ),
          ),
        )
        .limit(1);
      if (seen) return { stream: stream.name, seq: seen.seq, duplicate: true };
      const seq = locked.lastSeq + 1;
      await assertRoom(tx, stream, stored.data.length);
      if (stream.retention === "interest" && !(await hasInterest(tx, stream.name, subject))) {
        // Like JetStream: no durable would ever take it, so it is not stored at all.
        await tx.update(streams).set({ lastSeq: seq }).where(eq(streams.name, stream.name));
        return { stream: stream.name, seq, duplicate: false };
      }
      await tx.insert(messages).values({
        stream: stream.name,
        seq,
        subject,
        msgId: options.id,
        ...stored,
      });
      await tx.update(streams).set({ lastSeq: seq }).where(eq(streams.name, stream.name));
      if (pruneDue) await prune(tx, stream);
      return { stream: stream.name, seq, duplicate: false };
    });
    if (pruneDue) this.#prunedAt.set(stream.name, Date.now());
    if (!ack.duplicate) this.#hub.emit(streamEvent(stream.name));
    return ack;
  }

  async consume(options: ConsumerOptions, handler: MessageHandler): Promise<Subscription> {
    this.#assertOpen();
    const resolved = resolveConsumerOptions(options);
    const [stream] = await this.#db
      .select({ name: streams.name, retention: streams.retention })
      .from(streams)
      .where(eq(streams.name, resolved.stream));
    if (!stream) throw new StreamNotFoundError(`stream ${resolved.stream} does not exist`);
    if (stream.retention === "workqueue") {
      await assertNoOverlap(this.#db, resolved.stream, resolved.durable, resolved.filterSubject);
    }
    // Like a NATS durable: created on first use, its filter updated by later ones.
    await this.#db
      .insert(consumerTable)
      .values({
        stream: resolved.stream,
        durable: resolved.durable,
        filterSubject: resolved.filterSubject ?? null,
      })
      .onConflictDoUpdate({
        target: [consumerTable.stream, consumerTable.durable],
        set: { filterSubject: resolved.filterSubject ?? null },
      });
    this.#remember(resolved.stream, resolved.durable);
    const subscription = new EmbeddedSubscription(
      this.#db,
      this.#hub,
      resolved,
      handler,
      this.#settings,
      (s) => this.#subscriptions.delete(s),
    );
    this.#subscriptions.add(subscription);
    return subscription;
  }

  #remember(stream: string, durable: string): void {
    this.#durables.set(`${stream}\u0000${durable}`, { stream, durable });
  }

  async consumerLag(): Promise<ConsumerLag[]> {
    this.#assertOpen();
    const lags: ConsumerLag[] = [];
    for (const { stream, durable } of this.#durables.values()) {
      const lag = await this.#lagOf(stream, durable);
      if (lag) lags.push(lag);
    }
    return lags;
  }

  /**
   * What JetStream's consumer info says, from the tables: messages after the durable's cursor on
   * its filter (at most LAG_SCAN_LIMIT are looked at, so a larger backlog reads as that many) and
   * its pending rows.
   */
  async #lagOf(stream: string, durable: string): Promise<ConsumerLag | undefined> {
    const where = and(eq(consumerTable.stream, stream), eq(consumerTable.durable, durable));
    const [cursor] = await this.#db
      .select({ filterSubject: consumerTable.filterSubject, deliveredSeq: consumerTable.deliveredSeq })
      .from(consumerTable)
      .where(where);
    if (!cursor) return undefined;
    const matches = cursor.filterSubject ? subjectMatcher(cursor.filterSubject) : () => true;
    const fresh = await this.#db
      .select({ subject: messages.subject, publishedAt: messages.publishedAt })
      .from(messages)
      .where(and(eq(messages.stream, stream), gt(messages.seq, cursor.deliveredSeq)))
      .orderBy(asc(messages.seq))
      .limit(LAG_SCAN_LIMIT);
    const undelivered = fresh.filter((m) => matches(m.subject));
    const [held] = await this.#db
      .select({ count: count(), oldest: min(messages.publishedAt) })
      .from(pending)
      .leftJoin(messages, and(eq(messages.stream, pending.stream), eq(messages.seq, pending.seq)))
      .where(and(eq(pending.stream, stream), eq(pending.durable, durable), eq(pending.gaveUp, false)));
    const times = [held?.oldest, undelivered[0]?.publishedAt]
      .filter((t) => t !== null && t !== undefined)
      .map((t) => new Date(t as Date | string).getTime());
    const lag: ConsumerLag = { stream, durable, pending: undelivered.length, ackPending: held?.count ?? 0 };
    if (times.length > 0) lag.oldestUnackedAt = Math.min(...times);
    return lag;
  }

  async notify(subject: string, data: Uint8Array): Promise<void> {
    this.#assertOpen();
    assertSubject(subject);
    // Delivered after the caller continues, like a network hop: a listener never runs inside
    // notify(), and gets its own copy of the bytes.
    const copy = new Uint8Array(data);
    queueMicrotask(() => this.#hub.emit(NOTIFY_EVENT, subject, copy));
  }

  async listen(subject: string, handler: NotificationHandler): Promise<Subscription> {
    this.#assertOpen();
    const matches = subjectMatcher(subject);
    const onNotify = (notified: string, data: Uint8Array): void => {
      if (!matches(notified)) return;
      try {
        handler(notified, data);
      } catch (error) {
        this.#settings.onError(error);
      }
    };
    this.#hub.on(NOTIFY_EVENT, onNotify);
    const listener: Subscription = {
      stop: async () => {
        this.#hub.off(NOTIFY_EVENT, onNotify);
        this.#subscriptions.delete(listener);
      },
    };
    this.#subscriptions.add(listener);
    return listener;
  }

  close(): Promise<void> {
    this.#closed ??= Promise.all([...this.#subscriptions].map((s) => s.stop())).then(() => {});
    return this.#closed;
  }

  #assertOpen(): void {
    if (this.#closed) throw new BusClosedError("the embedded bus is closed");
  }

  async #streamFor(subject: string): Promise<StreamRow> {
    const all = await this.#db
      .select({
        name: streams.name,
        subjects: streams.subjects,
        retention: streams.retention,
        duplicateWindowMs: streams.duplicateWindowMs,
        maxAgeMs: streams.maxAgeMs,
        maxBytes: streams.maxBytes,
        maxMsgs: streams.maxMsgs,
      })
      .from(streams);
    const stream = all.find((s) => s.subjects.some((pattern) => matchesSubject(pattern, subject)));
    if (!stream) throw new StreamNotFoundError(`no stream captures subject ${subject}`);
    return stream;
  }
}

/** Prunes a stream's expired messages about ten times per max age, at most once a minute. */
function pruneEveryMs(stream: StreamRow): number {
  return Math.min(60_000, Math.max(1000, stream.maxAgeMs / 10));
}

/** Drops messages older than the stream's max age, and delivery state that pointed at them. */
async function prune(db: Database, stream: StreamRow): Promise<void> {
  await db
    .delete(messages)
    .where(
      and(
        eq(messages.stream, stream.name),
        lt(messages.publishedAt, sql`now() - ${stream.maxAgeMs}::bigint * interval '1 millisecond'`),
      ),
    );
  await db
    .delete(pending)
    .where(
      and(
        eq(pending.stream, stream.name),
        lt(
          pending.seq,
          sql`coalesce((SELECT min(${messages.seq}) FROM ${messages} WHERE ${messages.stream} = ${stream.name}), ${pending.seq} + 1)`,
        ),
      ),
    );
}

/**
 * Work-queue streams hand each message to one durable: like JetStream, refuse a durable whose
 * filter overlaps another durable's (no filter overlaps everything).
 */
async function assertNoOverlap(
  db: Database,
  stream: string,
  durable: string,
  filterSubject: string | undefined,
): Promise<void> {
  const others = await db
    .select({ durable: consumerTable.durable, filterSubject: consumerTable.filterSubject })
    .from(consumerTable)
    .where(eq(consumerTable.stream, stream));
  for (const other of others) {
    if (other.durable === durable) continue;
    if (patternsOverlap(filterSubject ?? ">", other.filterSubject ?? ">")) {
      throw new StreamConfigError(
        `stream ${stream} is a work queue: durable ${durable} would overlap durable ${other.durable}`,
      );
    }
  }
}

/** Refuses a publish that would take the stream beyond its size backstop (discard new). */
async function assertRoom(db: Database, stream: StreamRow, size: number): Promise<void> {
  if (stream.maxMsgs <= 0 && stream.maxBytes <= 0) return;
  const [usage] = await db
    .select({
      msgs: sql<number>`count(*)`.mapWith(Number),
      bytes: sql<number>`coalesce(sum(octet_length(${messages.data})), 0)`.mapWith(Number),
    })
    .from(messages)
    .where(eq(messages.stream, stream.name));
  const msgs = usage?.msgs ?? 0;
  const bytes = usage?.bytes ?? 0;
  if (stream.maxMsgs > 0 && msgs + 1 > stream.maxMsgs) {
    throw new StreamFullError(`stream ${stream.name} holds its maximum of ${stream.maxMsgs} messages`);
  }
  if (stream.maxBytes > 0 && bytes + size > stream.maxBytes) {
    throw new StreamFullError(`stream ${stream.name} holds its maximum of ${stream.maxBytes} bytes`);
  }
}

/** True when some durable of the stream takes messages on `subject`. */
async function hasInterest(db: Database, stream: string, subject: string): Promise<boolean> {
  const durables = await db
    .select({ filterSubject: consumerTable.filterSubject })
    .from(consumerTable)
    .where(eq(consumerTable.stream, stream));
  return durables.some((d) => d.filterSubject === null || matchesSubject(d.filterSubject, subject));
}

/**
 * After `durable` acked `seq`: deletes the message unless the retention keeps it — on a work
 * queue the one ack is enough; on an interest stream every other durable whose filter matches
 * must have acked it too (it is past their cursor and not pending with them).
 */
async function releaseAcked(db: Database, stream: string, durable: string, seq: number): Promise<void> {
  const [row] = await db
    .select({ subject: messages.subject })
    .from(messages)
    .where(and(eq(messages.stream, stream), eq(messages.seq, seq)))
    // Two durables acking at once: the second sees the first's ack.
    .for("update");
  // Read with every ack, not cached per subscription: ensureStream switches a stream's retention
  // in place, from any replica, while subscriptions run. A stale "limits" would leave handled
  // messages behind for good; a stale "workqueue" would delete messages that other durables of
  // a stream now on "interest" still need.
  const [config] = await db
    .select({ retention: streams.retention })
    .from(streams)
    .where(eq(streams.name, stream));
  if (!row || !config || config.retention === "limits") return;
  if (config.retention === "interest") {
    const others = await db
      .select({
        durable: consumerTable.durable,
        filterSubject: consumerTable.filterSubject,
        deliveredSeq: consumerTable.deliveredSeq,
      })
      .from(consumerTable)
      .where(eq(consumerTable.stream, stream));
    const held = await db
      .select({ durable: pending.durable })
      .from(pending)
      .where(and(eq(pending.stream, stream), eq(pending.seq, seq)));
    const holders = new Set(held.map((h) => h.durable));
    const needed = others.some(
      (o) =>
        o.durable !== durable &&
        (o.filterSubject === null || matchesSubject(o.filterSubject, row.subject)) &&
        (o.deliveredSeq < seq || holders.has(o.durable)),
    );
    if (needed) return;
  }
  await db.delete(messages).where(and(eq(messages.stream, stream), eq(messages.seq, seq)));
}

/** Deletes the messages every durable of the stream is past and holds no delivery of. */
async function dropHandled(db: Database, stream: string): Promise<void> {
  const [floor] = await db
    .select({ seq: sql<number | null>`min(${consumerTable.deliveredSeq})`.mapWith(Number) })
    .from(consumerTable)
    .where(eq(consumerTable.stream, stream));
  if (!floor || floor.seq === null || Number.isNaN(floor.seq)) return;
  await db
    .delete(messages)
    .where(
      and(
        eq(messages.stream, stream),
        lte(messages.seq, floor.seq),
        sql`NOT EXISTS (SELECT 1 FROM ${pending} WHERE ${pending.stream} = ${stream} AND ${pending.seq} = ${messages.seq})`,
      ),
    );
}

/** Past the max age a message is gone, whether or not a publish has pruned it yet. */
async function freshMessages(db: Database, stream: string): Promise<SQL | undefined> {
  const [limits] = await db
    .select({ maxAgeMs: streams.maxAgeMs })
    .from(streams)
    .where(eq(streams.name, stream));
  return limits && limits.maxAgeMs > 0
    ? gt(messages.publishedAt, sql`now() - ${limits.maxAgeMs}::bigint * interval '1 millisecond'`)
    : undefined;
}

interface Claim {
  messages: BusMessage[];
  /** Milliseconds until the earliest lease of this durable runs out (null: nothing pending). */
  dueInMs: number | null;
  /** The scan stopped at its limit: more matching messages may be waiting. */
  more: boolean;
}

/** One `consume()` call: claims up to its free handler slots per round, in stream order. */
class EmbeddedSubscription implements Subscription {
  readonly #db: Database;
  readonly #hub: EventEmitter;
  readonly #options: ResolvedConsumerOptions;
  readonly #handler: MessageHandler;
  readonly #settings: EmbeddedBusSettings;
  readonly #onStopped: (s: EmbeddedSubscription) => void;
  readonly #matches: (subject: string) => boolean;
  readonly #wakeup = new Wakeup();
  readonly #inFlight: InFlight;
  readonly #onStreamEvent = (): void => this.#wakeup.wake();
  readonly #loop: Promise<void>;
  #stopping = false;
  /** Set when `stop()` gave up waiting: late handler results must not ack anything. */
  #abandoned = false;
  #stopped: Promise<void> | undefined;

  constructor(
    db: Database,
    hub: EventEmitter,
    options: ResolvedConsumerOptions,
    handler: MessageHandler,
    settings: EmbeddedBusSettings,
    onStopped: (s: EmbeddedSubscription) => void,
  ) {
    this.#db = db;
    this.#hub = hub;
    this.#options = options;
    this.#handler = handler;
    this.#settings = settings;
    this.#onStopped = onStopped;
    this.#matches = options.filterSubject ? subjectMatcher(options.filterSubject) : () => true;
    this.#inFlight = new InFlight(() => this.#wakeup.wake());
    this.#hub.on(streamEvent(options.stream), this.#onStreamEvent);
    this.#loop = this.#run();
  }

  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<void> {
    this.#stopping = true;
    this.#hub.off(streamEvent(this.#options.stream), this.#onStreamEvent);
    this.#wakeup.wake();
    await this.#loop;
    if (!(await this.#inFlight.drain(this.#settings.drainTimeoutMs))) this.#abandoned = true;
    this.#onStopped(this);
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#stopping) {
      const free = this.#options.maxInFlight - this.#inFlight.size;
      let waitMs = this.#settings.pollIntervalMs;
      if (free > 0) {
        try {
          const claim = await this.#claim(free);
          failures = 0;
          for (const message of claim.messages) this.#start(message);
          if (claim.more && claim.messages.length < free) continue;
          if (claim.dueInMs !== null) waitMs = Math.min(waitMs, Math.max(0, claim.dueInMs));
        } catch (error) {
          if (this.#stopping) break;
          failures++;
          this.#settings.onError(error);
          waitMs = Math.min(5000, 100 * 2 ** Math.min(failures, 6));
        }
      }
      if (!this.#stopping) await this.#wakeup.wait(waitMs);
    }
  }

  #open(row: { stream: string; seq: number; msgId: string; subject: string; data: Uint8Array }) {
    const what = `embedded bus message ${row.stream}#${row.seq}`;
    const { sealer } = this.#settings;
    if (!sealer) throw new BusOptionsError(`${what} is sealed, but this bus was created without a sealer`);
    return openMessage(sealer, row.msgId, row.subject, row.data, what);
  }

  /**
   * Hands out up to `limit` messages: first those whose lease ran out (redeliveries, lowest
   * sequence first), then new ones past the durable's cursor that match its filter. The
   * durable's row lock makes replicas take turns, so no message is handed to two of them.
   */
  async #claim(wanted: number): Promise<Claim> {
    const lease = sql`now() + ${this.#options.ackWaitMs}::integer * interval '1 millisecond'`;
    return this.#db.transaction(async (tx) => {
      const deliveredSeq = await this.#lockCursor(tx);
      const limit = Math.min(wanted, await this.#ackPendingRoom(tx));
      if (limit <= 0) return { messages: [], dueInMs: await this.#nextDueInMs(tx), more: false };
      const fresh = await freshMessages(tx, this.#options.stream);
      // Delivery count of each claimed sequence.
      const counts = await this.#redeliverExpired(tx, limit, lease);
      let more = false;
      const room = limit - counts.size;
      if (room > 0) {
        const taken = await this.#takeNew(tx, deliveredSeq, room, fresh, lease);
        for (const seq of taken.seqs) counts.set(seq, 1);
        more = taken.more;
      }
      const claimed = counts.size > 0 ? await this.#loadClaimed(tx, counts, fresh) : [];
      return { messages: claimed, dueInMs: await this.#nextDueInMs(tx), more };
    });
  }

  /** How many more messages `maxAckPending` lets out now: it counts leases not yet run out. */
  async #ackPendingRoom(tx: Database): Promise<number> {
    const { maxAckPending } = this.#options;
    if (maxAckPending === undefined) return Number.POSITIVE_INFINITY;
    const [held] = await tx
      .select({ count: sql<number>`count(*)`.mapWith(Number) })
      .from(pending)
      .where(and(this.#ofDurable(), eq(pending.gaveUp, false), gt(pending.leaseUntil, sql`now()`)));
    return maxAckPending - (held?.count ?? 0);
  }

  #ofDurable(): SQL | undefined {
    return and(eq(pending.stream, this.#options.stream), eq(pending.durable, this.#options.durable));
  }

  /** Locks the durable's row (replicas take turns) and returns its cursor. */
  async #lockCursor(tx: Database): Promise<number> {
    const { stream, durable } = this.#options;
    const [cursor] = await tx
      .select({ deliveredSeq: consumerTable.deliveredSeq })
      .from(consumerTable)
      .where(and(eq(consumerTable.stream, stream), eq(consumerTable.durable, durable)))
      .for("update");
    if (!cursor) throw new StreamNotFoundError(`durable ${durable} of stream ${stream} does not exist`);
    return cursor.deliveredSeq;
  }

  /** Renews up to `limit` expired leases (lowest sequence first); returns their delivery counts. */
  async #redeliverExpired(tx: Database, limit: number, lease: SQL): Promise<Map<number, number>> {
    const { maxDeliver } = this.#options;
    const ofDurable = this.#ofDurable();
    const expired = and(ofDurable, eq(pending.gaveUp, false), lte(pending.leaseUntil, sql`now()`));
    if (maxDeliver !== undefined) {
      // A lease ran out on the last allowed delivery: like NATS, stop delivering it.
      await tx
        .update(pending)
        .set({ gaveUp: true })
        .where(and(expired, gte(pending.deliveryCount, maxDeliver)));
    }
    const due = tx
      .select({ seq: pending.seq })
      .from(pending)
      .where(expired)
      .orderBy(asc(pending.seq))
      .limit(limit);
    const redelivered = await tx
      .update(pending)
      .set({ deliveryCount: sql`${pending.deliveryCount} + 1`, leaseUntil: lease })
      .where(and(ofDurable, inArray(pending.seq, due)))
      .returning({ seq: pending.seq, deliveryCount: pending.deliveryCount });
    return new Map(redelivered.map((r) => [r.seq, r.deliveryCount]));
  }

  /**
   * Takes up to `room` new messages past the cursor that match the filter, leases them and
   * advances the cursor past every row looked at. `more`: the scan stopped at its limit.
   */
  async #takeNew(
    tx: Database,
    deliveredSeq: number,
    room: number,
    fresh: SQL | undefined,
    lease: SQL,
  ): Promise<{ seqs: number[]; more: boolean }> {
    const { stream, durable, filterSubject } = this.#options;
    const scanned = await tx
      .select({ seq: messages.seq, subject: messages.subject })
      .from(messages)
      .where(and(eq(messages.stream, stream), gt(messages.seq, deliveredSeq), fresh))
      .orderBy(asc(messages.seq))
      // Without a filter every row matches: read only what fits.
      .limit(filterSubject === undefined ? room : SCAN_LIMIT);
    const taken: number[] = [];
    let last = deliveredSeq;
    for (const row of scanned) {
      if (taken.length === room) break;
      last = row.seq;
      if (this.#matches(row.subject)) taken.push(row.seq);
    }
    const more = filterSubject !== undefined && taken.length < room && scanned.length === SCAN_LIMIT;
    if (taken.length > 0) {
      await tx
        .insert(pending)
        .values(taken.map((seq) => ({ stream, durable, seq, deliveryCount: 1, leaseUntil: lease })))
        .onConflictDoNothing();
    }
    if (last > deliveredSeq) {
      await tx
        .update(consumerTable)
        .set({ deliveredSeq: last })
        .where(and(eq(consumerTable.stream, stream), eq(consumerTable.durable, durable)));
    }
    return { seqs: taken, more };
  }

  /** Reads and opens the claimed messages; drops the pending rows of those that expired meanwhile. */
  async #loadClaimed(
    tx: Database,
    counts: Map<number, number>,
    fresh: SQL | undefined,
  ): Promise<BusMessage[]> {
    const rows = await tx
      .select()
      .from(messages)
      .where(and(eq(messages.stream, this.#options.stream), inArray(messages.seq, [...counts.keys()]), fresh))
      .orderBy(asc(messages.seq));
    const claimed: BusMessage[] = [];
    for (const row of rows) {
      // A message that does not open throws here: the claim rolls back, the message stays.
      const { data, headers } = row.sealed ? this.#open(row) : row;
      claimed.push({
        subject: row.subject,
        data,
        id: row.msgId,
        headers,
        seq: row.seq,
        deliveryCount: counts.get(row.seq) ?? 1,
      });
    }
    if (rows.length < counts.size) {
      // Expired (max age) while pending: nothing left to deliver.
      const present = new Set(rows.map((r) => r.seq));
      const gone = [...counts.keys()].filter((seq) => !present.has(seq));
      await tx.delete(pending).where(and(this.#ofDurable(), inArray(pending.seq, gone)));
    }
    return claimed;
  }

  /** Milliseconds until the durable's earliest live lease runs out, or null. */
  async #nextDueInMs(tx: Database): Promise<number | null> {
    const [next] = await tx
      .select({
        ms: sql<number>`(extract(epoch from (min(${pending.leaseUntil}) - now())) * 1000)::float8`.mapWith(
          Number,
        ),
      })
      .from(pending)
      .where(and(this.#ofDurable(), eq(pending.gaveUp, false)));
    return next && next.ms !== null && !Number.isNaN(next.ms) ? next.ms : null;
  }

  #start(message: BusMessage): void {
    const run = async (): Promise<void> => {
      let failed = false;
      try {
        await this.#handler(message);
      } catch {
        failed = true;
      }
      if (this.#abandoned) return;
      try {
        if (failed) await this.#nak(message);
        else await this.#ack(message);
      } catch (error) {
        // The lease runs out and the message is delivered again: at least once, never lost.
        this.#settings.onError(error);
      }
    };
    this.#inFlight.add(run());
  }

  async #ack(message: BusMessage): Promise<void> {
    const { stream, durable } = this.#options;
    await this.#db.transaction(async (tx) => {
      await tx
        .delete(pending)
        .where(and(eq(pending.stream, stream), eq(pending.durable, durable), eq(pending.seq, message.seq)));
      await releaseAcked(tx, stream, durable, message.seq);
    });
    // Subscribers held back by maxAckPending may take the next message now.
    if (this.#options.maxAckPending !== undefined) this.#hub.emit(streamEvent(stream));
  }

  async #nak(message: BusMessage): Promise<void> {
    const { stream, durable, maxDeliver, retryDelaysMs } = this.#options;
    const delayMs = retryDelay(retryDelaysMs, message.deliveryCount);
    const exhausted = maxDeliver !== undefined && message.deliveryCount >= maxDeliver;
    await this.#db
      .update(pending)
      .set({ leaseUntil: sql`now() + ${delayMs}::integer * interval '1 millisecond'`, gaveUp: exhausted })
      .where(
        and(
          eq(pending.stream, stream),
          eq(pending.durable, durable),
          eq(pending.seq, message.seq),
          // A replica that took it over after our lease ran out owns it now.
          eq(pending.deliveryCount, message.deliveryCount),
        ),
      );
    // Replicas waiting on a later lease should now wait for this one instead.
    this.#hub.emit(streamEvent(stream));
  }
}
