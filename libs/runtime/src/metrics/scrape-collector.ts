import { Counter, type Registry } from "prom-client";

/** Collection of a metric source took longer than its bound. */
export class CollectTimeoutError extends Error {
  override readonly name = "CollectTimeoutError";
}

/** How long one scrape waits for a source before leaving its gauges empty (default 2 s). */
export const DEFAULT_COLLECT_TIMEOUT_MS = 2000;

export interface ScrapeSourceOptions<T> {
  /** The `collector` label of `metrics_collect_failures_total` ("outbox", "bus_lag", …). */
  name: string;
  read(): Promise<T>;
  timeoutMs?: number;
}

/**
 * A source read on scrape for one or more gauges: one read serves every gauge of one scrape (the
 * registry starts all collections before awaiting any, so they share the read in flight), a read
 * is bounded in time, and a failure (database or bus down) gives the gauges no value and counts
 * `metrics_collect_failures_total{collector}` instead of failing the whole `/metrics` answer —
 * the endpoint must keep answering while a dependency is down, that is when it matters.
 */
export class ScrapeSource<T> {
  readonly #options: ScrapeSourceOptions<T>;
  readonly #failures: Counter<"collector">;
  #inFlight: Promise<T | undefined> | undefined;

  constructor(registry: Registry, options: ScrapeSourceOptions<T>) {
    this.#options = options;
    this.#failures = collectFailures(registry);
    // Present (at 0) from the start, so an alert on its increase has a series to look at.
    this.#failures.inc({ collector: options.name }, 0);
  }

  /** The source's value for this scrape; undefined when reading it failed or timed out. */
  get(): Promise<T | undefined> {
    if (this.#inFlight) return this.#inFlight;
    const read = this.#read().finally(() => {
      this.#inFlight = undefined;
    });
    this.#inFlight = read;
    return read;
  }

  async #read(): Promise<T | undefined> {
    const timeoutMs = this.#options.timeoutMs ?? DEFAULT_COLLECT_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.#options.read(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new CollectTimeoutError(`${this.#options.name}: no answer in ${timeoutMs} ms`)),
            timeoutMs,
          );
        }),
      ]);
    } catch {
      this.#failures.inc({ collector: this.#options.name });
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The registry's failure counter of scrape sources (one per registry, shared by all sources). */
function collectFailures(registry: Registry): Counter<"collector"> {
  const name = "metrics_collect_failures_total";
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<"collector">;
  return new Counter({
    name,
    help: "Reads of a metric source (database, bus) on scrape that failed or timed out; its gauges had no samples",
    labelNames: ["collector"],
    registers: [registry],
  });
}
