import {
  AckPolicy,
  type Consumer,
  type ConsumerConfig,
  type ConsumerMessages,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StoredMsg,
  type StreamInfo,
  type StreamUpdateConfig,
} from "@nats-io/jetstream";
import { connect, type NatsConnection, nanos, headers as natsHeaders } from "@nats-io/transport-node";
import {
  DEFAULT_ACK_WAIT_MS,
  InFlight,
  type ResolvedConsumerOptions,
  type ResolvedLifecycle,
  type ResolvedStreamConfig,
  resolveConsumerOptions,
  resolveLifecycle,
  resolveStreamConfig,
  retryDelay,
  userHeaders,
  Wakeup,
} from "./consumer-support.js";
import {
  BusClosedError,
  BusOptionsError,
  StreamConfigError,
  StreamFullError,
  StreamNotFoundError,
} from "./errors.js";
import { assertPattern, assertSubject, subjectMatcher } from "./subject.js";
import type {
  Bus,
  BusConnectionState,
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

export interface NatsBusOptions extends BusLifecycleOptions {
  /** `nats://host:port`, or several for a cluster. */
  servers: string | string[];
  /** Connection name shown by the server (service name and replica). */
  name: string;
  user?: string;
  pass?: string;
  token?: string;
  /**
   * TLS to the server: a CA bundle to verify it (else the system's), and a client certificate
   * and key when the server asks for one. Any of them turns TLS on.
   */
  tls?: NatsTlsOptions;
  /** How long a publish or JetStream API call waits for the server (default 5 s). */
  requestTimeoutMs?: number;
  /**
   * Lifetime of one pull request of a consumer (default 30 s, minimum 1 s). An idle consumer
   * renews its pull this often; after a reconnect the client re-issues it at once.
   */
  pullExpiresMs?: number;
  /** Replicas of every stream this bus creates or updates (default 1; 3 on a NATS cluster). */
  streamReplicas?: number;
}

/** Files (PEM) for TLS to NATS. */
export interface NatsTlsOptions {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

/** JetStream API error codes this bus tells apart. */
const CONSUMER_NOT_FOUND = 10014;
const STREAM_NOT_FOUND = 10059;
/** A work-queue stream refuses a second unfiltered durable / one whose filter overlaps another's. */
const WORKQUEUE_NOT_UNIQUE = new Set([10099, 10100]);
/** A store failure; with discard-new limits: "maximum messages/bytes exceeded". */
const STREAM_STORE_FAILED = 10077;
const NATS_RETENTION: Record<StreamRetention, RetentionPolicy> = {
  workqueue: RetentionPolicy.Workqueue,
  interest: RetentionPolicy.Interest,
  limits: RetentionPolicy.Limits,
};
/** `Nats-Msg-Id`: the header JetStream dedupes on. */
const MSG_ID = "Nats-Msg-Id";
/** Consumer info requests in flight at once while collecting `consumerLag`. */
const LAG_CONCURRENCY = 8;

/**
 * Connects to NATS and returns the JetStream bus. Reconnects are left to the client (it retries
 * forever); consumers are durable pull consumers on file-backed streams, so they resume where
 * they were after a NATS restart. Fails at once when no server answers the first connect.
 */
export async function connectNatsBus(options: NatsBusOptions): Promise<Bus> {
  const lifecycle = resolveLifecycle(options);
  const requestTimeoutMs = options.requestTimeoutMs ?? 5000;
  const pullExpiresMs = options.pullExpiresMs ?? 30_000;
  if (pullExpiresMs < 1000) throw new BusOptionsError("pullExpiresMs must be at least 1000");
  const streamReplicas = options.streamReplicas ?? 1;
  if (!Number.isInteger(streamReplicas) || streamReplicas < 1 || streamReplicas > 5) {
    throw new BusOptionsError("streamReplicas must be an integer from 1 to 5");
  }
  const nc = await connect({
    servers: options.servers,
    name: options.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    // A server that vanished without closing the socket (a partition) is noticed after three
    // unanswered pings (≤ 40 s), not the client's default of two 2-minute pings.
    pingInterval: 10_000,
    maxPingOut: 3,
    timeout: requestTimeoutMs,
    ...(options.user !== undefined ? { user: options.user } : {}),
    ...(options.pass !== undefined ? { pass: options.pass } : {}),
    ...(options.token !== undefined ? { token: options.token } : {}),
    ...(options.tls !== undefined ? { tls: { ...options.tls } } : {}),
  });
  const jsm = await jetstreamManager(nc, { timeout: requestTimeoutMs });
  return new NatsBus(nc, jsm, jsm.jetstream(), {
    ...lifecycle,
    requestTimeoutMs,
    pullExpiresMs,
    streamReplicas,
  });
}

interface NatsBusSettings extends ResolvedLifecycle {
  requestTimeoutMs: number;
  pullExpiresMs: number;
  streamReplicas: number;
}

class NatsBus implements Bus {
  readonly #nc: NatsConnection;
  readonly #jsm: JetStreamManager;
  readonly #js: JetStreamClient;
  readonly #settings: NatsBusSettings;
  readonly #subscriptions = new Set<Subscription>();
  /** Durables declared or consumed through this instance (see `consumerLag`), by stream and name. */
  readonly #durables = new Map<string, { stream: string; durable: string }>();
  readonly #connectionListeners = new Set<(state: BusConnectionState) => void>();
  #connection: BusConnectionState = { connected: true };
  #closed: Promise<void> | undefined;

  constructor(nc: NatsConnection, jsm: JetStreamManager, js: JetStreamClient, settings: NatsBusSettings) {
    this.#nc = nc;
    this.#jsm = jsm;
    this.#js = js;
    this.#settings = settings;
    void this.#followStatus();
  }

  watchConnection(listener: (state: BusConnectionState) => void): () => void {
    this.#connectionListeners.add(listener);
    listener(this.#connection);
    return () => this.#connectionListeners.delete(listener);
  }

  /** Turns the client's status events into connection states (until the connection closes). */
  async #followStatus(): Promise<void> {
    const set = (state: BusConnectionState) => {
      if (state.connected === this.#connection.connected) return;
      this.#connection = state;
      for (const listener of this.#connectionListeners) listener(state);
    };
    try {
      for await (const status of this.#nc.status()) {
        if (status.type === "disconnect")
          set({ connected: false, reason: `disconnected from ${status.server}` });
        else if (status.type === "staleConnection") set({ connected: false, reason: "stale connection" });
        else if (status.type === "reconnect") set({ connected: true });
      }
    } catch (error) {
      this.#settings.onError(error);
    }
    set({ connected: false, reason: "connection closed" });
  }

  async ensureStream(config: StreamConfig): Promise<void> {
    this.#assertOpen();
    const resolved = resolveStreamConfig(config, this.#settings.streamLimits);
    for (const durable of resolved.durables) this.#remember(resolved.name, durable.name);
    const retention = NATS_RETENTION[resolved.retention];
    const wanted: Partial<StreamUpdateConfig> = {
      subjects: resolved.subjects,
      duplicate_window: nanos(resolved.duplicateWindowMs),
      max_age: nanos(resolved.maxAgeMs),
      max_bytes: resolved.maxBytes > 0 ? resolved.maxBytes : -1,
      max_msgs: resolved.maxMsgs > 0 ? resolved.maxMsgs : -1,
      // A full stream refuses the publish instead of dropping the oldest (unhandled) message:
      // publishers (outbox relays) keep theirs and retry.
      discard: DiscardPolicy.New,
      num_replicas: this.#settings.streamReplicas,
    };
    try {
      let info = await this.#streamInfo(config.name);
      // JetStream cannot change the retention of an existing stream (one created before this
      // version used limits retention): move its unhandled messages into a new one.
      if (info && (info.config.retention !== retention || info.config.sealed)) {
        const moved = await this.#takeUnhandled(info);
        info = await this.#streamInfo(config.name);
        if (!info) await this.#createStream(resolved, retention, wanted);
        await this.#ensureDurables(resolved);
        for (const msg of moved) await this.#republish(msg);
        return;
      }
      if (!info) await this.#createStream(resolved, retention, wanted);
      else await this.#jsm.streams.update(config.name, wanted);
      await this.#ensureDurables(resolved);
    } catch (error) {
      if (error instanceof JetStreamApiError) {
        throw new StreamConfigError(`stream ${config.name}: ${error.message}`, { cause: error });
      }
      throw error;
    }
  }

  async #streamInfo(name: string): Promise<StreamInfo | undefined> {
    return this.#jsm.streams.info(name).catch((error: unknown) => {
      if (apiCode(error) === STREAM_NOT_FOUND) return undefined;
      throw error;
    });
  }

  async #createStream(
    resolved: ResolvedStreamConfig,
    retention: RetentionPolicy,
    wanted: Partial<StreamUpdateConfig>,
  ): Promise<void> {
    try {
      await this.#jsm.streams.add({ name: resolved.name, storage: StorageType.File, retention, ...wanted });
    } catch (error) {
      // Another replica created it first: settle the limits with an update.
      if (!(await this.#streamInfo(resolved.name))) throw error;
      await this.#jsm.streams.update(resolved.name, wanted);
    }
  }

  /** Creates the declared durables that do not exist yet (`consume()` sets their options later). */
  async #ensureDurables(resolved: ResolvedStreamConfig): Promise<void> {
    for (const durable of resolved.durables) {
      const existing = await this.#jsm.consumers.info(resolved.name, durable.name).catch((error: unknown) => {
        if (apiCode(error) === CONSUMER_NOT_FOUND) return undefined;
        throw error;
      });
      if (existing) continue;
      await this.#jsm.consumers
        .add(resolved.name, {
          durable_name: durable.name,
          ack_policy: AckPolicy.Explicit,
          deliver_policy: DeliverPolicy.All,
          ack_wait: nanos(DEFAULT_ACK_WAIT_MS),
          max_deliver: -1,
          ...(durable.filterSubject !== undefined ? { filter_subject: durable.filterSubject } : {}),
        })
        .catch(async (error: unknown) => {
          // A replica created it in the meantime.
          if (!(await this.#jsm.consumers.info(resolved.name, durable.name).catch(() => undefined))) {
            throw error;
          }
        });
    }
  }

  /**
   * Seals a stream of the wrong retention (no publish is stored any more: publishers retry until
   * the new stream exists), reads the messages some durable still has to handle, and deletes it.
   * The caller recreates the stream and republishes them under their dedupe ids; consumers are
   * idempotent, so a message handled twice does no harm.
   */
  async #takeUnhandled(info: StreamInfo): Promise<StoredMsg[]> {
    const name = info.config.name;
    if (!info.config.sealed) {
      await this.#jsm.streams.update(name, { sealed: true } as unknown as Partial<StreamUpdateConfig>);
    }
    const sealed = await this.#streamInfo(name);
    if (!sealed) return [];
    const consumers = await this.#jsm.consumers.list(name).next();
    // A durable with nothing pending and nothing unacked has handled all of its messages.
    const busy = consumers.filter((c) => c.num_pending > 0 || c.num_ack_pending > 0);
    const matchers = busy.map((c) => ({
      floor: c.ack_floor.stream_seq,
      matches: c.config.filter_subject ? subjectMatcher(c.config.filter_subject) : () => true,
    }));
    const { first_seq: first, last_seq: last, messages } = sealed.state;
    const moved: StoredMsg[] = [];
    if (messages > 0 && (consumers.length === 0 || busy.length > 0)) {
      const from =
        consumers.length === 0 ? first : Math.max(first, Math.min(...matchers.map((m) => m.floor + 1)));
      for (let seq = from; seq <= last; seq++) {
        const msg = await this.#jsm.streams.getMessage(name, { seq }).catch(() => null);
        if (!msg) continue;
        if (consumers.length === 0 || matchers.some((m) => m.floor < seq && m.matches(msg.subject))) {
          moved.push(msg);
        }
      }
    }
    await this.#jsm.streams.delete(name);
    return moved;
  }

  async #republish(msg: StoredMsg): Promise<void> {
    const headers = natsHeaders();
    let id = `migrated-${msg.seq}`;
    for (const key of msg.header?.keys() ?? []) {
      if (key === MSG_ID) id = msg.header.get(key);
      else headers.set(key, msg.header.get(key));
    }
    await this.#js.publish(msg.subject, msg.data, {
      msgID: id,
      headers,
      timeout: this.#settings.requestTimeoutMs,
    });
  }

  async publish(subject: string, data: Uint8Array, options: PublishOptions): Promise<PublishAck> {
    this.#assertOpen();
    assertSubject(subject);
    if (options.id.length === 0) throw new BusOptionsError("publish needs a non-empty dedupe id");
    const headers = natsHeaders();
    for (const [key, value] of Object.entries(userHeaders(options.headers))) headers.set(key, value);
    try {
      const ack = await this.#js.publish(subject, data, {
        msgID: options.id,
        headers,
        timeout: this.#settings.requestTimeoutMs,
      });
      return { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate };
    } catch (error) {
      if (apiCode(error) === STREAM_STORE_FAILED && /maximum (messages|bytes)/i.test(String(error))) {
        throw new StreamFullError(`stream full, publish on ${subject} refused: ${(error as Error).message}`, {
          cause: error,
        });
      }
      // JetStream answers a subject no stream captures with "no responders" (which the client
      // reports as JetStream being disabled) — but so does a server that is still starting up.
      // Only a stream lookup that answers tells the permanent case from the passing one.
      if (error instanceof Error && error.name === "JetStreamNotEnabled") {
        const found = await this.#jsm.streams.find(subject).then(
          () => true,
          (lookupError: unknown) => (lookupError instanceof JetStreamApiError ? false : undefined),
        );
        if (found === false) {
          throw new StreamNotFoundError(`no stream captures subject ${subject}`, { cause: error });
        }
      }
      throw error;
    }
  }

  async consume(options: ConsumerOptions, handler: MessageHandler): Promise<Subscription> {
    this.#assertOpen();
    const resolved = resolveConsumerOptions(options);
    const consumer = await this.#ensureConsumer(resolved);
    this.#remember(resolved.stream, resolved.durable);
    const subscription = new NatsSubscription(
      consumer,
      resolved,
      handler,
      this.#settings,
      () => this.#ensureConsumer(resolved),
      (s) => this.#subscriptions.delete(s),
    );
    this.#subscriptions.add(subscription);
    return subscription;
  }

  #remember(stream: string, durable: string): void {
    this.#durables.set(`${stream}\u0000${durable}`, { stream, durable });
  }

  async resetDurable(stream: string, durable: string): Promise<void> {
    this.#assertOpen();
    await this.#jsm.consumers.delete(stream, durable).catch((error: unknown) => {
      if (apiCode(error) === CONSUMER_NOT_FOUND || apiCode(error) === STREAM_NOT_FOUND) return false;
      throw error;
    });
  }

  async consumerLag(): Promise<ConsumerLag[]> {
    this.#assertOpen();
    const lags: ConsumerLag[] = [];
    const durables = [...this.#durables.values()];
    // A few at a time: a gateway with many peers has a lane durable per peer.
    for (let i = 0; i < durables.length; i += LAG_CONCURRENCY) {
      const batch = durables.slice(i, i + LAG_CONCURRENCY);
      for (const lag of await Promise.all(batch.map((d) => this.#lagOf(d.stream, d.durable)))) {
        if (lag) lags.push(lag);
      }
    }
    return lags;
  }

  async #lagOf(stream: string, durable: string): Promise<ConsumerLag | undefined> {
    const info = await this.#jsm.consumers.info(stream, durable).catch((error: unknown) => {
      if (apiCode(error) === CONSUMER_NOT_FOUND || apiCode(error) === STREAM_NOT_FOUND) return undefined;
      throw error;
    });
    if (!info) return undefined;
    const lag: ConsumerLag = { stream, durable, pending: info.num_pending, ackPending: info.num_ack_pending };
    if (info.num_pending + info.num_ack_pending === 0) return lag;
    // Everything up to the ack floor is acked: the oldest unacked message is the first one after
    // it on the durable's subjects (STREAM.MSG.GET with next_by_subj, nats-server 2.9+).
    const query = { seq: info.ack_floor.stream_seq + 1, next_by_subj: info.config.filter_subject || ">" };
    const oldest = await this.#jsm.streams
      .getMessage(stream, query as unknown as { seq: number })
      .catch(() => null);
    if (oldest) lag.oldestUnackedAt = oldest.time.getTime();
    return lag;
  }

  async notify(subject: string, data: Uint8Array): Promise<void> {
    this.#assertOpen();
    assertSubject(subject);
    this.#nc.publish(subject, data);
  }

  async listen(subject: string, handler: NotificationHandler): Promise<Subscription> {
    this.#assertOpen();
    assertPattern(subject);
    const sub = this.#nc.subscribe(subject, {
      callback: (error, msg) => {
        if (error) {
          this.#settings.onError(error);
          return;
        }
        try {
          handler(msg.subject, plainBytes(msg.data));
        } catch (handlerError) {
          this.#settings.onError(handlerError);
        }
      },
    });
    // Once the server has the subscription, notifications from any connection reach it.
    await this.#nc.flush();
    const listener: Subscription = {
      stop: async () => {
        this.#subscriptions.delete(listener);
        if (!sub.isClosed()) sub.unsubscribe();
      },
    };
    this.#subscriptions.add(listener);
    return listener;
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    await Promise.all([...this.#subscriptions].map((s) => s.stop()));
    // Draining flushes the acks of finished handlers before the socket closes.
    let timer: NodeJS.Timeout | undefined;
    const drained = this.#nc.drain().then(
      () => true,
      () => false,
    );
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), Math.max(this.#settings.drainTimeoutMs, 1000));
    });
    const ok = await Promise.race([drained, timedOut]);
    clearTimeout(timer);
    if (!ok && !this.#nc.isClosed()) await this.#nc.close();
    await this.#nc.closed();
  }

  #assertOpen(): void {
    if (this.#closed || this.#nc.isClosed()) throw new BusClosedError("the NATS bus is closed");
  }

  /** Creates the durable pull consumer, or updates it to these options (replicas agree on them). */
  async #ensureConsumer(options: ResolvedConsumerOptions): Promise<Consumer> {
    const config: Partial<ConsumerConfig> = {
      durable_name: options.durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(options.ackWaitMs),
      max_deliver: options.maxDeliver ?? -1,
      ...(options.maxAckPending !== undefined ? { max_ack_pending: options.maxAckPending } : {}),
      ...(options.filterSubject !== undefined ? { filter_subject: options.filterSubject } : {}),
    };
    try {
      const existing = await this.#jsm.consumers
        .info(options.stream, options.durable)
        .catch((error: unknown) => {
          if (apiCode(error) === CONSUMER_NOT_FOUND) return undefined;
          throw error;
        });
      if (!existing) {
        await this.#jsm.consumers.add(options.stream, config).catch(async (error: unknown) => {
          // A replica may have created it in the meantime: then an update settles the config.
          const code = apiCode(error);
          if (code === STREAM_NOT_FOUND || (code !== undefined && WORKQUEUE_NOT_UNIQUE.has(code)))
            throw error;
          await this.#jsm.consumers.update(options.stream, options.durable, updatable(config));
        });
      } else if (differs(existing.config, config)) {
        await this.#jsm.consumers.update(options.stream, options.durable, updatable(config));
      }
      return await this.#js.consumers.get(options.stream, options.durable);
    } catch (error) {
      if (apiCode(error) === STREAM_NOT_FOUND) {
        throw new StreamNotFoundError(`stream ${options.stream} does not exist`, { cause: error });
      }
      const code = apiCode(error);
      if (code !== undefined && WORKQUEUE_NOT_UNIQUE.has(code)) {
        throw new StreamConfigError(
          `stream ${options.stream} is a work queue: durable ${options.durable} overlaps another durable`,
          { cause: error },
        );
      }
      throw error;
    }
  }
}

/** One `consume()` call: a loop of pull requests sized to the free handler slots. */
class NatsSubscription implements Subscription {
  #consumer: Consumer;
  readonly #options: ResolvedConsumerOptions;
  readonly #handler: MessageHandler;
  readonly #settings: NatsBusSettings;
  readonly #reensure: () => Promise<Consumer>;
  readonly #onStopped: (s: NatsSubscription) => void;
  readonly #wakeup = new Wakeup();
  readonly #inFlight: InFlight;
  readonly #loop: Promise<void>;
  #batch: ConsumerMessages | undefined;
  #stopping = false;
  /** Set when `stop()` gave up waiting: late handler results must not ack anything. */
  #abandoned = false;
  #stopped: Promise<void> | undefined;

  constructor(
    consumer: Consumer,
    options: ResolvedConsumerOptions,
    handler: MessageHandler,
    settings: NatsBusSettings,
    reensure: () => Promise<Consumer>,
    onStopped: (s: NatsSubscription) => void,
  ) {
    this.#consumer = consumer;
    this.#options = options;
    this.#handler = handler;
    this.#settings = settings;
    this.#reensure = reensure;
    this.#onStopped = onStopped;
    this.#inFlight = new InFlight(() => this.#wakeup.wake());
    this.#loop = this.#run();
  }

  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<void> {
    this.#stopping = true;
    this.#wakeup.wake();
    await this.#batch?.close();
    await this.#loop;
    if (!(await this.#inFlight.drain(this.#settings.drainTimeoutMs))) this.#abandoned = true;
    this.#onStopped(this);
  }

  async #run(): Promise<void> {
    const { maxInFlight } = this.#options;
    // Pull again once a quarter of the slots are free: fewer, larger pulls under load.
    const pullThreshold = Math.max(1, Math.floor(maxInFlight / 4));
    let failures = 0;
    while (!this.#stopping) {
      const free = maxInFlight - this.#inFlight.size;
      if (free < pullThreshold) {
        await this.#wakeup.wait(this.#settings.pullExpiresMs);
        continue;
      }
      try {
        const batch = await this.#consumer.fetch({
          max_messages: free,
          expires: this.#settings.pullExpiresMs,
        });
        this.#batch = batch;
        if (this.#stopping) await batch.close();
        for await (const msg of batch) {
          if (this.#stopping) {
            // Pulled but not started: hand it back for another replica right away.
            msg.nak();
            continue;
          }
          // A pull re-issued after a reconnect can deliver more than asked: wait for a slot.
          while (this.#inFlight.size >= maxInFlight && !this.#stopping) await this.#wakeup.wait(1000);
          if (this.#stopping) msg.nak();
          else this.#start(msg);
        }
        this.#batch = undefined;
        failures = 0;
      } catch (error) {
        this.#batch = undefined;
        if (this.#stopping) break;
        failures++;
        this.#settings.onError(error);
        await this.#wakeup.wait(Math.min(5000, 100 * 2 ** Math.min(failures, 6)));
        // The consumer may have been lost (NATS restarted without its store): recreate it.
        if (!this.#stopping) {
          this.#consumer = await this.#reensure().catch((reensureError: unknown) => {
            this.#settings.onError(reensureError);
            return this.#consumer;
          });
        }
      }
    }
  }

  #start(msg: JsMsg): void {
    const message: BusMessage = {
      subject: msg.subject,
      data: plainBytes(msg.data),
      id: msg.headers?.get(MSG_ID) ?? "",
      headers: headersOf(msg),
      seq: msg.seq,
      deliveryCount: msg.info.deliveryCount,
    };
    const run = async (): Promise<void> => {
      let failed = false;
      try {
        await this.#handler(message);
      } catch {
        failed = true;
      }
      if (this.#abandoned) return;
      try {
        if (failed) msg.nak(retryDelay(this.#options.retryDelaysMs, message.deliveryCount));
        else msg.ack();
      } catch (error) {
        // The connection is gone: the server redelivers after the ack wait.
        this.#settings.onError(error);
      }
    };
    this.#inFlight.add(run());
  }
}

/**
 * The client hands out `Buffer` views into the socket chunk that carried the message: copy the
 * payload, so callers get a plain `Uint8Array` that does not pin (or share) the chunk.
 */
function plainBytes(data: Uint8Array): Uint8Array {
  return new Uint8Array(data);
}

function headersOf(msg: JsMsg): Record<string, string> {
  const result: Record<string, string> = {};
  if (!msg.headers) return result;
  for (const key of msg.headers.keys()) result[key] = msg.headers.get(key);
  return userHeaders(result);
}

function apiCode(error: unknown): number | undefined {
  return error instanceof JetStreamApiError ? error.code : undefined;
}

/** The fields of a durable that can change after creation. */
function updatable(config: Partial<ConsumerConfig>): Partial<ConsumerConfig> {
  const { ack_wait, max_deliver, max_ack_pending, filter_subject } = config;
  return {
    ack_wait,
    max_deliver,
    ...(max_ack_pending !== undefined ? { max_ack_pending } : {}),
    ...(filter_subject !== undefined ? { filter_subject } : {}),
  };
}

function differs(existing: ConsumerConfig, wanted: Partial<ConsumerConfig>): boolean {
  return (
    existing.ack_wait !== wanted.ack_wait ||
    existing.max_deliver !== wanted.max_deliver ||
    (wanted.max_ack_pending !== undefined && existing.max_ack_pending !== wanted.max_ack_pending) ||
    (existing.filter_subject ?? "") !== (wanted.filter_subject ?? "")
  );
}
