/**
 * The message bus every service uses: durable streams (fan-out DS→QS, outbound federation) and
 * core notifications (live wake-ups of queue listeners). Two implementations share this contract
 * and one test suite: NATS JetStream for deployments and an embedded one for the all-in-one
 * homeserver.
 */

/**
 * What removes a message from a stream (besides the `maxAgeMs`/`maxBytes`/`maxMsgs` backstop):
 * - `workqueue`: the first ack by any durable. Durables must not overlap (NATS refuses a second
 *   durable whose filter overlaps another's), so use it where each subject has exactly one
 *   consuming durable. A message published before its durable exists waits for it.
 * - `interest`: once every durable whose filter matches it has acked it. A message no durable
 *   matches when it is published is dropped at once — declare the durables that must see every
 *   message in `durables`, so they exist from the stream's creation on.
 * - `limits`: nothing but the backstop (every durable sees every message; for tests and tools).
 */
export type StreamRetention = "workqueue" | "interest" | "limits";

/** A durable created together with its stream (see `StreamConfig.durables`). */
export interface StreamDurable {
  name: string;
  /** Only messages on subjects matching this pattern (default: the whole stream). */
  filterSubject?: string;
}

/**
 * A durable stream: every message on a subject matching `subjects` is stored and offered to the
 * durable consumers of the stream, until `retention` lets it go or the backstop limits drop it.
 * Handled messages must leave the bus (a copy of the store would otherwise hold all past traffic).
 */
export interface StreamConfig {
  name: string;
  /** Subject patterns (NATS syntax: `a.b.*`, `a.>`) captured by this stream. */
  subjects: string[];
  /** What removes a handled message (default `limits`: only the backstop). */
  retention?: StreamRetention;
  /**
   * Durables created with the stream (before any publish can reach it), configured like
   * `consume()` with defaults until their consumer starts. Needed on `interest` streams so a
   * message published before the consumer first ran is not dropped.
   */
  durables?: StreamDurable[];
  /** How long a publish id is remembered for dedupe (default 2 minutes). */
  duplicateWindowMs?: number;
  /**
   * Backstop: messages older than this are dropped even when not acked (default: the bus's
   * `streamLimits.maxAgeMs`, 7 days).
   */
  maxAgeMs?: number;
  /**
   * Backstop: a publish that would take the stream beyond this many bytes of payload is refused
   * (nothing stored; the publisher retries later). Default: the bus's `streamLimits.maxBytes`.
   */
  maxBytes?: number;
  /** Backstop: like `maxBytes`, counted in messages. Default: the bus's `streamLimits.maxMsgs`. */
  maxMsgs?: number;
}

/** Defaults of the backstop limits every stream gets (`BusLifecycleOptions.streamLimits`). */
export interface StreamLimits {
  /** Milliseconds; 0 turns the age limit off. */
  maxAgeMs: number;
  /** Bytes of payload; 0 turns the size limit off. */
  maxBytes: number;
  /** Messages; 0 turns the count limit off. */
  maxMsgs: number;
}

export interface PublishOptions {
  /** Dedupe id: a second publish with the same id inside the window is stored once. */
  id: string;
  headers?: Record<string, string>;
}

export interface PublishAck {
  stream: string;
  /** Position of the message in its stream. */
  seq: number;
  /** True when the id was seen before and this publish stored nothing. */
  duplicate: boolean;
}

export interface BusMessage {
  subject: string;
  data: Uint8Array;
  /** The publisher's dedupe id. */
  id: string;
  headers: Record<string, string>;
  /** Stream sequence number. */
  seq: number;
  /** 1 on first delivery, higher on redelivery. */
  deliveryCount: number;
}

export interface ConsumerOptions {
  stream: string;
  /** Durable consumer name: replicas using the same name share the work, each message goes to one. */
  durable: string;
  /** Only messages on subjects matching this pattern (default: the whole stream). */
  filterSubject?: string;
  /** A message handed out and neither acked nor nacked within this time is redelivered (default 30 s). */
  ackWaitMs?: number;
  /**
   * Backpressure: at most this many messages are inside this subscription's handler at once
   * (default 1); further messages stay in the stream until a slot frees. The limit is per
   * `consume()` call, so every replica of a durable handles up to this many in parallel.
   */
  maxInFlight?: number;
  /**
   * At most this many messages of the durable are handed out and not yet acked, over all its
   * subscribers together (replicas included); the bus holds back the rest. `1` makes the durable
   * strictly ordered even across replicas: a later message is never handed out while an earlier
   * one is still held — also not while a message of a stopped replica waits out its ack wait.
   * Default: no limit beyond each subscription's `maxInFlight`.
   */
  maxAckPending?: number;
  /** Give up on a message after this many deliveries (default: never). */
  maxDeliver?: number;
  /**
   * How long a message whose handler threw waits before it is delivered again, indexed by its
   * delivery count (first failure → first entry; the last entry repeats). Default
   * `[250, 1000, 5000, 15000]` ms.
   */
  retryDelaysMs?: number[];
}

/**
 * Handles one message. Resolving acks it (do it only after your own transaction committed);
 * throwing naks it so it is redelivered later. Nothing is lost either way.
 */
export type MessageHandler = (msg: BusMessage) => Promise<void>;

export interface Subscription {
  /**
   * Stops taking new messages from the moment it is called (before the promise settles), then
   * waits for handlers in flight; unacked messages are redelivered.
   */
  stop(): Promise<void>;
}

export type NotificationHandler = (subject: string, data: Uint8Array) => void;

/** Options both bus factories take. */
export interface BusLifecycleOptions {
  /**
   * `stop()` and `close()` wait this long for handlers in flight (default 10 s). A handler still
   * running afterwards is abandoned: its result is never acked, so the message is redelivered
   * once its ack wait passes.
   */
  drainTimeoutMs?: number;
  /** Errors of background work (a failed ack, a lost connection, a throwing listener). */
  onError?: (error: unknown) => void;
  /** Backstop limits of streams that set none themselves (default `DEFAULT_STREAM_LIMITS`). */
  streamLimits?: Partial<StreamLimits>;
}

export interface Bus {
  /** Creates the stream or updates its subjects and limits; idempotent. */
  ensureStream(config: StreamConfig): Promise<void>;
  /** Stores a message durably; resolves once it is persisted. */
  publish(subject: string, data: Uint8Array, options: PublishOptions): Promise<PublishAck>;
  /** Starts a durable consumer. */
  consume(options: ConsumerOptions, handler: MessageHandler): Promise<Subscription>;
  /** Fire-and-forget notification to live listeners on any replica (not stored, may be lost). */
  notify(subject: string, data: Uint8Array): Promise<void>;
  /** Listens to notifications; subject may be a pattern. Active once the promise resolves. */
  listen(subject: string, handler: NotificationHandler): Promise<Subscription>;
  /** Stops all consumers and listeners (waiting for handlers, see `drainTimeoutMs`) and closes the connection. */
  close(): Promise<void>;
  /**
   * Reports the connection to the bus server as it goes and comes back (the NATS client
   * reconnects by itself); the listener first hears the current state. Absent on the embedded
   * bus, which lives in the service's database. Returns the unsubscribe function.
   */
  watchConnection?(listener: (state: BusConnectionState) => void): () => void;
  /**
   * The lag of every durable this bus instance declared (`ensureStream`) or consumed, also after
   * its subscription stopped; a durable that no longer exists is left out. Costs one or two
   * small requests per durable (metrics call it on scrape).
   */
  consumerLag?(): Promise<ConsumerLag[]>;
  /**
   * Deletes a durable of a `workqueue` stream, so that the next `consume()` creates it afresh and
   * hands out every message still in the stream — the unacked ones, as acked ones are gone — in
   * stream order, before anything newer. For a consumer that takes over from one that died holding
   * messages: without it they come back only after their ack wait, behind newer ones. A message the
   * old holder handled but had not acked comes again (handlers dedupe). Absent on the embedded bus
   * (one process: nobody to take over from).
   */
  resetDurable?(stream: string, durable: string): Promise<void>;
}

/** How far one durable consumer is behind (operational metrics). */
export interface ConsumerLag {
  stream: string;
  durable: string;
  /** Messages matching its filter that were not handed out yet. */
  pending: number;
  /** Messages handed out and not acked yet (held by a handler, or waiting out a retry). */
  ackPending: number;
  /** Publish time (ms since the epoch) of its oldest message not acked yet; absent when none. */
  oldestUnackedAt?: number;
}

/** The connection to a bus server: up, or down with why (a server address, never a secret). */
export interface BusConnectionState {
  readonly connected: boolean;
  readonly reason?: string;
}
