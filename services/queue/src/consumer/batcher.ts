import { setTimeout as sleep } from "node:timers/promises";

interface Pending<T> {
  item: T;
  weight: number;
  resolve(): void;
  reject(error: unknown): void;
}

export interface BatcherOptions {
  /** Most items in one batch. */
  maxItems: number;
  /** Most total weight in one batch (a batch always takes at least one item). */
  maxWeight: number;
  /**
   * Keep the items' order: a failed batch is retried as a whole after these delays (ms, the last
   * one repeating) while every later item waits behind it, until it succeeds or the batcher is
   * closed — order before progress. Without it, a failed batch is retried item by item and later
   * batches go on, so one poisonous item holds back nothing but order is not kept.
   */
  orderedRetryDelaysMs?: readonly number[];
  /** A failed attempt of an ordered batch (before its retry). */
  onRetry?: (error: unknown, attempt: number) => void;
}

/** The batcher was closed while an item waited: it was not processed. */
export class BatcherClosedError extends Error {
  override readonly name = "BatcherClosedError";
}

/**
 * Group commit for a per-message consumer: handlers `add` their message and wait; whatever
 * arrived while the previous batch was being processed becomes the next batch, handled in one
 * go (one database transaction). Each `add` settles with its batch's outcome, so a message is
 * acked only after the transaction that handled it committed.
 */
export class Batcher<T> {
  private readonly pending: Pending<T>[] = [];
  private running = false;
  private readonly closing = new AbortController();

  constructor(
    private readonly process: (items: T[]) => Promise<void>,
    private readonly options: BatcherOptions,
    private readonly weightOf: (item: T) => number = () => 1,
  ) {}

  /** Resolves once the batch containing `item` has been processed. */
  add(item: T): Promise<void> {
    if (this.closing.signal.aborted) return Promise.reject(new BatcherClosedError("the batcher is closed"));
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ item, weight: this.weightOf(item), resolve, reject });
      if (!this.running) {
        this.running = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  /**
   * Stops: every waiting item is rejected with {@link BatcherClosedError} (its message goes back
   * to the bus), an ordered batch being retried is given up the same way; a batch being processed
   * right now finishes and settles as usual.
   */
  close(): void {
    this.closing.abort();
    this.rejectWaiting();
  }

  private rejectWaiting(): void {
    const error = new BatcherClosedError("the batcher is closed");
    for (const p of this.pending.splice(0)) p.reject(error);
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0 && !this.closing.signal.aborted) {
        const batch = this.take();
        if (this.options.orderedRetryDelaysMs !== undefined) await this.runOrdered(batch);
        else await this.runUnordered(batch);
      }
    } finally {
      this.running = false;
      if (this.closing.signal.aborted) this.rejectWaiting();
    }
  }

  private async runOrdered(batch: Pending<T>[]): Promise<void> {
    const delays = this.options.orderedRetryDelaysMs ?? [];
    for (let attempt = 1; ; attempt++) {
      try {
        await this.process(batch.map((p) => p.item));
        for (const p of batch) p.resolve();
        return;
      } catch (error) {
        this.options.onRetry?.(error, attempt);
        const delay = delays[Math.min(attempt, delays.length) - 1] ?? 1000;
        const closed = await sleep(delay, false, { signal: this.closing.signal }).catch(() => true);
        if (closed) {
          for (const p of batch)
            p.reject(new BatcherClosedError("the batcher closed while the batch was retried"));
          return;
        }
      }
    }
  }

  private async runUnordered(batch: Pending<T>[]): Promise<void> {
    try {
      await this.process(batch.map((p) => p.item));
      for (const p of batch) p.resolve();
    } catch (error) {
      if (batch.length === 1) {
        batch[0]?.reject(error);
        return;
      }
      for (const p of batch) {
        try {
          await this.process([p.item]);
          p.resolve();
        } catch (single) {
          p.reject(single);
        }
      }
    }
  }

  private take(): Pending<T>[] {
    const batch: Pending<T>[] = [];
    let weight = 0;
    while (this.pending.length > 0 && batch.length < this.options.maxItems) {
      const next = this.pending[0] as Pending<T>;
      if (batch.length > 0 && weight + next.weight > this.options.maxWeight) break;
      batch.push(next);
      weight += next.weight;
      this.pending.shift();
    }
    return batch;
  }
}
