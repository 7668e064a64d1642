/**
 * At most one push per queue per `intervalMs`, however many messages arrive: the first push goes
 * out at once, later requests inside the interval collapse into one trailing push at its end
 * (carrying the newest job), so a device that fetched after the first push still learns about
 * what came after. A burst of any size is one or two pushes. Per replica: with several QS
 * replicas a queue gets at most one push per interval from each.
 */
export class PushCoalescer<T> {
  private readonly queues = new Map<string, { pending: T | undefined; timer: NodeJS.Timeout }>();
  private closed = false;

  constructor(
    private readonly intervalMs: number,
    private readonly send: (job: T) => void,
  ) {}

  /**
   * Asks for a push of queue `key`; `job` replaces any push still waiting for that queue. True
   * when it went out now, false when it waits for (or was folded into) the trailing push.
   */
  request(key: string, job: T): boolean {
    if (this.closed) return false;
    if (this.intervalMs <= 0) {
      this.send(job);
      return true;
    }
    const state = this.queues.get(key);
    if (state !== undefined) {
      state.pending = job;
      return false;
    }
    this.send(job);
    this.open(key);
    return true;
  }

  /** Queues inside their interval (tests, metrics). */
  get size(): number {
    return this.queues.size;
  }

  /** Drops the waiting pushes (at shutdown). */
  close(): void {
    this.closed = true;
    for (const state of this.queues.values()) clearTimeout(state.timer);
    this.queues.clear();
  }

  private open(key: string): void {
    const timer = setTimeout(() => {
      const state = this.queues.get(key);
      this.queues.delete(key);
      if (state?.pending === undefined || this.closed) return;
      this.send(state.pending);
      this.open(key);
    }, this.intervalMs);
    // A waiting push never holds the process open.
    timer.unref();
    this.queues.set(key, { pending: undefined, timer });
  }
}
