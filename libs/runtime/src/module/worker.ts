import { setTimeout as sleep } from "node:timers/promises";
import type { Bus, ConsumerOptions, MessageHandler, Subscription } from "../bus/types.js";
import type { DatabaseHandle } from "../db/open-database.js";
import type { OutboxRelay } from "../outbox/relay.js";

/**
 * Background work a module declares (an outbox relay, a bus consumer, a periodic job): the runner
 * starts the module's workers in order once `create` returned, before the gRPC server serves, and
 * stops them in reverse order on shutdown, after the server drained and before the database and
 * bus close. A `start` that rejects must leave nothing of its own running (it is not stopped).
 */
export interface Worker {
  /** What the logs call it ("outbox relay", "fan-out consumer"). */
  readonly name: string;
  start(): Promise<void> | void;
  stop(): Promise<void> | void;
}

/** What {@link intervalWorker} runs and where its failures go. */
export interface IntervalWorkerOptions {
  /** Milliseconds between runs; the first run comes one interval after start. */
  intervalMs: number;
  run(): Promise<unknown>;
  /** A run that failed (the next one runs on schedule anyway). */
  onError(error: unknown): void;
}

/**
 * A periodic job on an unref'd timer (it never keeps the process alive). Stopping clears the
 * timer; a run in progress finishes on its own.
 */
export function intervalWorker(name: string, options: IntervalWorkerOptions): Worker {
  if (!(options.intervalMs > 0)) throw new RangeError(`${name}: intervalMs must be positive`);
  let timer: NodeJS.Timeout | undefined;
  return {
    name,
    start() {
      if (timer) return;
      timer = setInterval(() => {
        Promise.resolve().then(options.run).catch(options.onError);
      }, options.intervalMs);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
    },
  };
}

/**
 * A durable bus consumer: `start` subscribes (the stream must exist), `stop` stops taking
 * messages and waits for the handlers in flight (unacked messages are redelivered).
 */
export function consumerWorker(
  name: string,
  bus: Pick<Bus, "consume">,
  options: ConsumerOptions,
  handler: MessageHandler,
): Worker {
  let subscription: Subscription | undefined;
  return {
    name,
    async start() {
      subscription ??= await bus.consume(options, handler);
    },
    async stop() {
      const running = subscription;
      subscription = undefined;
      await running?.stop();
    },
  };
}

/**
 * An outbox relay as the worker "outbox relay", its loop started `startDelayMs` after `start`
 * (0: at once). Stopping cancels a pending start and waits for the cycle in flight.
 */
export function outboxRelayWorker(
  relay: Pick<OutboxRelay, "start" | "stop">,
  options: { startDelayMs?: number } = {},
): Worker {
  const delay = options.startDelayMs ?? 0;
  let pending: NodeJS.Timeout | undefined;
  return {
    name: "outbox relay",
    start() {
      if (delay > 0) pending = setTimeout(() => relay.start(), delay);
      else relay.start();
    },
    async stop() {
      clearTimeout(pending);
      pending = undefined;
      await relay.stop();
    },
  };
}

/** What {@link leaderWorker} runs while its replica leads, and where its failures go. */
export interface LeaderWorkerOptions {
  /** The database whose advisory lock `lockKey` elects the leader (held on a connection of its own). */
  database: Pick<DatabaseHandle, "tryWithLock">;
  lockKey: bigint;
  /** How often a replica that does not lead tries the lock again (default 1 s). */
  retryMs?: number;
  /**
   * Starts the work once this replica holds the lock; the returned `stop` is called when it stops
   * leading (worker stopped, or the lock's connection lost), before the lock is released. `signal`
   * aborts when leading ends while `lead` still runs (a wait it makes should end then).
   */
  lead(signal: AbortSignal): Promise<{ stop(): Promise<void> }>;
  /** A failed attempt to lead (the next one comes after `retryMs`). */
  onError(error: unknown): void;
  /** Told when this replica starts and stops leading. */
  onLeading?(leading: boolean): void;
}

/**
 * Work that runs on one replica at a time: whichever holds the database advisory lock `lockKey`.
 * The others stand by and try the lock every `retryMs`; a leader whose process dies loses the lock
 * with its connection, and one of them takes over. Stopping the worker stops the work (inside the
 * lock, so the next leader starts only after it has drained) and releases the lock.
 */
export function leaderWorker(
  name: string,
  options: LeaderWorkerOptions,
): Worker & { readonly leading: boolean } {
  const retryMs = options.retryMs ?? 1000;
  let stopping: AbortController | undefined;
  let loop: Promise<void> | undefined;
  let leading = false;
  const setLeading = (value: boolean) => {
    leading = value;
    options.onLeading?.(value);
  };
  const lead = async (stop: AbortSignal, lost: AbortSignal): Promise<void> => {
    if (stop.aborted || lost.aborted) return;
    const work = await options.lead(AbortSignal.any([stop, lost]));
    setLeading(true);
    try {
      await new Promise<void>((resolve) => {
        if (stop.aborted || lost.aborted) return resolve();
        stop.addEventListener("abort", () => resolve(), { once: true });
        lost.addEventListener("abort", () => resolve(), { once: true });
      });
    } finally {
      setLeading(false);
      await work.stop();
    }
  };
  return {
    name,
    get leading() {
      return leading;
    },
    start() {
      if (loop) return;
      const stop = new AbortController();
      stopping = stop;
      loop = (async () => {
        while (!stop.signal.aborted) {
          try {
            await options.database.tryWithLock(options.lockKey, (_db, lost) => lead(stop.signal, lost));
          } catch (error) {
            options.onError(error);
          }
          if (stop.signal.aborted) break;
          await sleep(retryMs, undefined, { signal: stop.signal }).catch(() => undefined);
        }
      })();
    },
    async stop() {
      stopping?.abort();
      await loop;
      loop = undefined;
      stopping = undefined;
    },
  };
}
