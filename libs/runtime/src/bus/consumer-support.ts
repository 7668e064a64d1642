import { BusOptionsError, StreamConfigError } from "./errors.js";
import { assertPattern } from "./subject.js";
import type {
  BusLifecycleOptions,
  ConsumerOptions,
  StreamConfig,
  StreamDurable,
  StreamLimits,
  StreamRetention,
} from "./types.js";

/** Consumer options with every default filled in and validated. */
export interface ResolvedConsumerOptions {
  stream: string;
  durable: string;
  filterSubject: string | undefined;
  ackWaitMs: number;
  maxInFlight: number;
  maxAckPending: number | undefined;
  maxDeliver: number | undefined;
  retryDelaysMs: number[];
}

export const DEFAULT_ACK_WAIT_MS = 30_000;
export const DEFAULT_RETRY_DELAYS_MS = [250, 1000, 5000, 15_000];
export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;
export const DEFAULT_DUPLICATE_WINDOW_MS = 120_000;
/**
 * The backstop every stream gets unless it or the bus config (`BUS_MAX_AGE_MS`, …) says
 * otherwise: handled messages leave through the retention policy long before; these bound what
 * an unconsumed subject (a consumer that never runs, a peer that is down for good) can pile up.
 */
export const DEFAULT_STREAM_LIMITS: StreamLimits = {
  maxAgeMs: 7 * 24 * 3600_000,
  maxBytes: 1024 * 1024 * 1024,
  maxMsgs: 1_000_000,
};

/** Durable and stream names: what NATS accepts in an API subject token. */
const NAME = /^[A-Za-z0-9_-]+$/;

/** A stream definition with defaults filled in. */
export interface ResolvedStreamConfig {
  name: string;
  subjects: string[];
  retention: StreamRetention;
  durables: StreamDurable[];
  duplicateWindowMs: number;
  /** 0: no age limit. */
  maxAgeMs: number;
  /** 0: no size limit. */
  maxBytes: number;
  /** 0: no count limit. */
  maxMsgs: number;
}

const RETENTIONS: readonly StreamRetention[] = ["workqueue", "interest", "limits"];

/**
 * Validates a stream definition and fills in defaults the way JetStream does: the duplicate
 * window is 2 minutes, or the max age when that is shorter; a window longer than the max age is
 * refused. Limits the stream does not set come from `limits` (the bus's backstop).
 */
export function resolveStreamConfig(
  config: StreamConfig,
  limits: StreamLimits = DEFAULT_STREAM_LIMITS,
): ResolvedStreamConfig {
  assertName(config.name, "stream");
  if (config.subjects.length === 0) throw new StreamConfigError(`stream ${config.name} has no subjects`);
  for (const subject of config.subjects) assertPattern(subject);
  const retention = config.retention ?? "limits";
  if (!RETENTIONS.includes(retention)) {
    throw new StreamConfigError(`stream ${config.name}: unknown retention ${String(retention)}`);
  }
  const durables = config.durables ?? [];
  for (const durable of durables) {
    assertName(durable.name, "durable");
    if (durable.filterSubject !== undefined) assertPattern(durable.filterSubject);
  }
  const limit = (value: number | undefined, fallback: number, what: string): number => {
    const resolved = value ?? fallback;
    if (!Number.isSafeInteger(resolved) || resolved < 0) {
      throw new StreamConfigError(`stream ${config.name}: ${what} must be a non-negative integer`);
    }
    return resolved;
  };
  const maxAgeMs = limit(config.maxAgeMs, limits.maxAgeMs, "maxAgeMs");
  const maxBytes = limit(config.maxBytes, limits.maxBytes, "maxBytes");
  const maxMsgs = limit(config.maxMsgs, limits.maxMsgs, "maxMsgs");
  const duplicateWindowMs =
    config.duplicateWindowMs ??
    (maxAgeMs > 0 ? Math.min(DEFAULT_DUPLICATE_WINDOW_MS, maxAgeMs) : DEFAULT_DUPLICATE_WINDOW_MS);
  if (!Number.isInteger(duplicateWindowMs) || duplicateWindowMs < 1) {
    throw new StreamConfigError(`stream ${config.name}: duplicateWindowMs must be a positive integer`);
  }
  if (maxAgeMs > 0 && duplicateWindowMs > maxAgeMs) {
    throw new StreamConfigError(`stream ${config.name}: duplicateWindowMs must not exceed maxAgeMs`);
  }
  return {
    name: config.name,
    subjects: config.subjects,
    retention,
    durables,
    duplicateWindowMs,
    maxAgeMs,
    maxBytes,
    maxMsgs,
  };
}

/** Fills in defaults and refuses options neither implementation could honour. */
export function resolveConsumerOptions(options: ConsumerOptions): ResolvedConsumerOptions {
  assertName(options.stream, "stream");
  assertName(options.durable, "durable");
  if (options.filterSubject !== undefined) assertPattern(options.filterSubject);
  const ackWaitMs = options.ackWaitMs ?? DEFAULT_ACK_WAIT_MS;
  const maxInFlight = options.maxInFlight ?? 1;
  if (!Number.isInteger(ackWaitMs) || ackWaitMs < 1) {
    throw new BusOptionsError(`ackWaitMs must be a positive integer, got ${ackWaitMs}`);
  }
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
    throw new BusOptionsError(`maxInFlight must be a positive integer, got ${maxInFlight}`);
  }
  for (const key of ["maxAckPending", "maxDeliver"] as const) {
    const value = options[key];
    if (value !== undefined && (!Number.isInteger(value) || value < 1)) {
      throw new BusOptionsError(`${key} must be a positive integer, got ${value}`);
    }
  }
  const retryDelaysMs = options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
  if (retryDelaysMs.length === 0 || retryDelaysMs.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new BusOptionsError("retryDelaysMs must be a non-empty list of non-negative integers");
  }
  return {
    stream: options.stream,
    durable: options.durable,
    filterSubject: options.filterSubject,
    ackWaitMs,
    maxInFlight,
    maxAckPending: options.maxAckPending,
    maxDeliver: options.maxDeliver,
    retryDelaysMs,
  };
}

/** Refuses stream and durable names NATS would not accept, so both buses agree. */
export function assertName(name: string, what: string): void {
  if (!NAME.test(name)) {
    throw new BusOptionsError(`${what} name "${name}" must be letters, digits, "_" or "-"`);
  }
}

/** The wait before redelivering a message whose handler threw on delivery `deliveryCount`. */
export function retryDelay(retryDelaysMs: number[], deliveryCount: number): number {
  const index = Math.min(Math.max(deliveryCount, 1), retryDelaysMs.length) - 1;
  return retryDelaysMs[index] ?? 0;
}

/** Lifecycle options with every default filled in. */
export type ResolvedLifecycle = Required<Omit<BusLifecycleOptions, "streamLimits">> & {
  streamLimits: StreamLimits;
};

/** Lifecycle options with defaults. */
export function resolveLifecycle(options: BusLifecycleOptions): ResolvedLifecycle {
  const drainTimeoutMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
  if (!Number.isFinite(drainTimeoutMs) || drainTimeoutMs < 0) {
    throw new BusOptionsError(`drainTimeoutMs must be a non-negative number, got ${drainTimeoutMs}`);
  }
  const streamLimits: StreamLimits = { ...DEFAULT_STREAM_LIMITS };
  for (const key of ["maxAgeMs", "maxBytes", "maxMsgs"] as const) {
    const value = options.streamLimits?.[key];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new BusOptionsError(`streamLimits.${key} must be a non-negative integer, got ${value}`);
    }
    streamLimits[key] = value;
  }
  const onError = options.onError ?? (() => {});
  return {
    drainTimeoutMs,
    streamLimits,
    onError: (error) => {
      try {
        onError(error);
      } catch {
        // A throwing error callback must not break the bus's background work.
      }
    },
  };
}

/** Copies user headers, leaving out the `Nats-*` ones the bus itself uses. */
export function userHeaders(headers: Record<string, string> | undefined): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers ?? {})) {
    if (!key.toLowerCase().startsWith("nats-")) result[key] = value;
  }
  return result;
}

/**
 * A sleep that can be cut short: the consumer loops wait on it for new messages, a free
 * handler slot, a due redelivery or `stop()`. Exactly one timer exists while waiting, none after.
 */
export class Wakeup {
  #pending: (() => void) | undefined;
  #signalled = false;

  /** Resolves after `ms`, or at once if `wake()` was called since the last wait. */
  wait(ms: number): Promise<void> {
    if (this.#signalled) {
      this.#signalled = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#pending = undefined;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.#pending = done;
    });
  }

  /** Ends the current wait, or makes the next one return at once. */
  wake(): void {
    if (this.#pending) this.#pending();
    else this.#signalled = true;
  }
}

/** The handlers of one subscription that have started and not yet settled. */
export class InFlight {
  readonly #running = new Set<Promise<void>>();
  readonly #onSettled: () => void;

  constructor(onSettled: () => void) {
    this.#onSettled = onSettled;
  }

  get size(): number {
    return this.#running.size;
  }

  /** Tracks a running handler (which must never reject). */
  add(run: Promise<void>): void {
    this.#running.add(run);
    void run.finally(() => {
      this.#running.delete(run);
      this.#onSettled();
    });
  }

  /** Waits until every handler settled, at most `timeoutMs`; false when some were still running. */
  async drain(timeoutMs: number): Promise<boolean> {
    if (this.#running.size === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const settled = (async (): Promise<true> => {
      while (this.#running.size > 0) await Promise.all([...this.#running]);
      return true;
    })();
    try {
      return await Promise.race([settled, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }
}
