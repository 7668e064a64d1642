import type { Bus, ConsumerOptions, MessageHandler, Subscription } from "../bus/types.js";
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
