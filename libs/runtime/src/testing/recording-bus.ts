import type {
  Bus,
  ConsumerOptions,
  MessageHandler,
  NotificationHandler,
  PublishAck,
  PublishOptions,
  StreamConfig,
  Subscription,
} from "../bus/types.js";

/** One `publish` call as the recording bus saw it. */
export interface RecordedMessage {
  subject: string;
  data: Uint8Array;
  id: string;
  headers: Record<string, string>;
}

/** The recording bus was asked for something it does not do (it never delivers). */
export class RecordingBusError extends Error {
  override readonly name = "RecordingBusError";
}

export interface RecordingBusHooks {
  /** Runs before the message is stored; throwing fails the publish with nothing stored. */
  beforeStore?: (message: RecordedMessage) => Promise<void> | void;
  /** Runs after the message is stored; throwing loses the ack (stored, but the publisher sees an error). */
  afterStore?: (message: RecordedMessage) => Promise<void> | void;
}

/**
 * A fake `Bus` for tests of publishers: records every publish, stores each dedupe id once (like
 * a stream with an endless duplicate window), can fail or delay publishes, and notices when one
 * id is being published twice at the same time. It never delivers to consumers.
 */
export class RecordingBus implements Bus {
  /** Every publish call that reached the store, duplicates included, in arrival order. */
  readonly attempts: RecordedMessage[] = [];
  /** What a stream would hold: the first publish of each id, in order. */
  readonly stored: RecordedMessage[] = [];
  /** Ids whose publish started while a publish of the same id was still in flight. */
  readonly concurrentDuplicates: string[] = [];
  readonly notifications: { subject: string; data: Uint8Array }[] = [];
  readonly streams: StreamConfig[] = [];
  hooks: RecordingBusHooks = {};

  #ids = new Set<string>();
  #inFlight = new Set<string>();
  #failNext = 0;
  #failing = false;
  #seq = 0;
  #closed = false;
  #waiters: { condition: () => boolean; resolve: () => void }[] = [];

  /** The next `count` publishes fail before storing anything. */
  failNext(count: number): void {
    this.#failNext += count;
  }

  /** While true every publish fails (the bus is "down"). */
  setFailing(failing: boolean): void {
    this.#failing = failing;
  }

  /** Resolves once `count` distinct messages are stored; rejects after `timeoutMs`. */
  waitForStored(count: number, timeoutMs = 10_000): Promise<void> {
    return this.waitFor(() => this.stored.length >= count, timeoutMs, `${count} stored messages`);
  }

  /** Resolves once `count` publishes (duplicates included) reached the store; rejects after `timeoutMs`. */
  waitForAttempts(count: number, timeoutMs = 10_000): Promise<void> {
    return this.waitFor(() => this.attempts.length >= count, timeoutMs, `${count} publish attempts`);
  }

  /** Resolves once `condition` holds after a publish; rejects after `timeoutMs`. */
  waitFor(condition: () => boolean, timeoutMs = 10_000, what = "condition"): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = {
        condition,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(
          new RecordingBusError(
            `timed out after ${timeoutMs} ms waiting for ${what} (${this.stored.length} stored, ${this.attempts.length} attempts)`,
          ),
        );
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  async ensureStream(config: StreamConfig): Promise<void> {
    this.streams.push(config);
  }

  async publish(subject: string, data: Uint8Array, options: PublishOptions): Promise<PublishAck> {
    if (this.#closed) throw new RecordingBusError("bus is closed");
    const message: RecordedMessage = { subject, data, id: options.id, headers: options.headers ?? {} };
    if (this.#inFlight.has(options.id)) this.concurrentDuplicates.push(options.id);
    this.#inFlight.add(options.id);
    try {
      if (this.#failing) throw new RecordingBusError("bus unavailable");
      if (this.#failNext > 0) {
        this.#failNext--;
        throw new RecordingBusError("publish failed (injected)");
      }
      await this.hooks.beforeStore?.(message);
      this.attempts.push(message);
      const duplicate = this.#ids.has(options.id);
      if (!duplicate) {
        this.#ids.add(options.id);
        this.stored.push(message);
        this.#seq++;
      }
      this.#notifyWaiters();
      await this.hooks.afterStore?.(message);
      return {
        stream: "recording",
        seq: duplicate ? this.stored.findIndex((m) => m.id === options.id) + 1 : this.#seq,
        duplicate,
      };
    } finally {
      this.#inFlight.delete(options.id);
    }
  }

  async consume(_options: ConsumerOptions, _handler: MessageHandler): Promise<Subscription> {
    throw new RecordingBusError("RecordingBus does not deliver messages; use the embedded bus");
  }

  async notify(subject: string, data: Uint8Array): Promise<void> {
    this.notifications.push({ subject, data });
  }

  async listen(_subject: string, _handler: NotificationHandler): Promise<Subscription> {
    throw new RecordingBusError("RecordingBus does not deliver notifications; use the embedded bus");
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #notifyWaiters(): void {
    const ready = this.#waiters.filter((w) => w.condition());
    this.#waiters = this.#waiters.filter((w) => !ready.includes(w));
    for (const waiter of ready) waiter.resolve();
  }
}
