/**
 * The message bus every service uses: durable streams (fan-out DS→QS, outbound federation) and
 * core notifications (live wake-ups of queue listeners). Two implementations share this contract
 * and one test suite: NATS JetStream for deployments and an embedded one for the all-in-one
 * homeserver.
 */

/** A durable stream: every subject matching `subjects` is stored until a consumer acks it. */
export interface StreamConfig {
  name: string;
  /** Subject patterns (NATS syntax: `a.b.*`, `a.>`) captured by this stream. */
  subjects: string[];
  /** How long a publish id is remembered for dedupe. */
  duplicateWindowMs?: number;
  /** Messages older than this are dropped even when not acked (0 / undefined: keep forever). */
  maxAgeMs?: number;
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
  /** A message handed out and neither acked nor nacked within this time is redelivered. */
  ackWaitMs?: number;
  /** Backpressure: at most this many unacked messages are in the handler at once (default 1). */
  maxInFlight?: number;
  /** Give up on a message after this many deliveries (default: never). */
  maxDeliver?: number;
}

/**
 * Handles one message. Resolving acks it (do it only after your own transaction committed);
 * throwing naks it so it is redelivered later. Nothing is lost either way.
 */
export type MessageHandler = (msg: BusMessage) => Promise<void>;

export interface Subscription {
  /** Stops taking new messages and waits for handlers in flight; unacked messages are redelivered. */
  stop(): Promise<void>;
}

export type NotificationHandler = (subject: string, data: Uint8Array) => void;

export interface Bus {
  /** Creates the stream or updates its subjects; idempotent. */
  ensureStream(config: StreamConfig): Promise<void>;
  /** Stores a message durably; resolves once it is persisted. */
  publish(subject: string, data: Uint8Array, options: PublishOptions): Promise<PublishAck>;
  /** Starts a durable consumer. */
  consume(options: ConsumerOptions, handler: MessageHandler): Promise<Subscription>;
  /** Fire-and-forget notification to live listeners on any replica (not stored). */
  notify(subject: string, data: Uint8Array): Promise<void>;
  /** Listens to notifications; subject may be a pattern. */
  listen(subject: string, handler: NotificationHandler): Promise<Subscription>;
  /** Stops all consumers and closes the connection. */
  close(): Promise<void>;
}
