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
}

/**
 * Group commit for a per-message consumer: handlers `add` their message and wait; whatever
 * arrived while the previous batch was being processed becomes the next batch, handled in one
 * go (one database transaction). Each `add` settles with its batch's outcome, so a message is
 * acked only after the transaction that handled it committed. When a batch of several fails,
 * its items are retried one by one, so one poisonous message cannot hold back the others.
 */
export class Batcher<T> {
  private readonly pending: Pending<T>[] = [];
  private running = false;

  constructor(
    private readonly process: (items: T[]) => Promise<void>,
    private readonly options: BatcherOptions,
    private readonly weightOf: (item: T) => number = () => 1,
  ) {}

  /** Resolves once the batch containing `item` has been processed. */
  add(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ item, weight: this.weightOf(item), resolve, reject });
      if (!this.running) {
        this.running = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.take();
        try {
          await this.process(batch.map((p) => p.item));
          for (const p of batch) p.resolve();
        } catch (error) {
          if (batch.length === 1) {
            batch[0]?.reject(error);
            continue;
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
    } finally {
      this.running = false;
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
