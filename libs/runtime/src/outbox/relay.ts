import { openMessage, type PayloadSealer } from "@phoenix/crypto";
import { asc, count, inArray, min } from "drizzle-orm";
import type { Bus } from "../bus/types.js";
import type { DatabaseHandle } from "../db/open-database.js";
import type { Database } from "../db/types.js";
import { outbox } from "./schema.js";

/** Advisory lock key of the single active relay per database ("phnxoutb"). */
const RELAY_LOCK_KEY = 0x70686e786f757462n;

export interface OutboxRelayOptions {
  /** The service's database handle: the relay reads and deletes outbox rows under its lock. */
  database: Pick<DatabaseHandle, "tryWithLock">;
  bus: Pick<Bus, "publish">;
  /**
   * Opens the sealed rows (the same secret `writeOutbox` sealed them under). A row it cannot open
   * stays and blocks its subject, reported through `onError`: nothing is dropped.
   */
  sealer: PayloadSealer;
  /** Rows read per cycle (default 100). */
  batchSize?: number;
  /** How often to look for rows when nobody pokes (default 1000 ms). */
  pollIntervalMs?: number;
  /**
   * Publishes awaiting their ack at once, across different subjects (default 1: the whole outbox
   * goes out strictly in commit order). Messages on one subject are always published one after
   * the other, in commit order.
   */
  maxInFlight?: number;
  /** First pause after a failed cycle; doubles per consecutive failure up to `maxRetryDelayMs`. */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** After a poke finds another replica's relay active, try again this soon (default 50 ms). */
  busyRetryMs?: number;
  /** Called with every failed cycle (bus or database error); the relay retries by itself. */
  onError?: (error: unknown) => void;
}

/** What one relay cycle did. */
export interface RelayCycle {
  /** False when another relay held the lock, so this one did nothing. */
  acquired: boolean;
  published: number;
}

/** Publishing one outbox row failed; the row stays and is retried. */
export class OutboxPublishError extends Error {
  override readonly name = "OutboxPublishError";
}

type OutboxRow = typeof outbox.$inferSelect;

/**
 * Publishes committed outbox rows to the bus, in commit order, and deletes them once the bus
 * acknowledged them.
 *
 * Several replicas may each run a relay: a cycle runs only while holding the database's relay
 * lock, so one relay at a time reads, publishes and deletes, and the next one starts after the
 * previous deleted what it published — rows are never published by two relays at once, and never
 * out of order. A crash after publishing but before the delete leaves the rows in place; they
 * are published again with the same id, which the bus dedupes. A failed publish stops the cycle
 * for that subject (later rows of the subject wait), the cycle is retried with backoff, nothing
 * is skipped or dropped.
 */
export class OutboxRelay {
  readonly #database: Pick<DatabaseHandle, "tryWithLock">;
  readonly #bus: Pick<Bus, "publish">;
  readonly #sealer: PayloadSealer;
  readonly #batchSize: number;
  readonly #pollIntervalMs: number;
  readonly #maxInFlight: number;
  readonly #retryDelayMs: number;
  readonly #maxRetryDelayMs: number;
  readonly #busyRetryMs: number;
  readonly #onError: (error: unknown) => void;

  #loop: Promise<void> | undefined;
  #stopping = false;
  /** Set by `poke()`: rows were committed that the current or last cycle may not have seen. */
  #poked = false;
  #wake: (() => void) | undefined;
  #wakeOnPoke = true;

  constructor(options: OutboxRelayOptions) {
    this.#database = options.database;
    this.#bus = options.bus;
    this.#sealer = options.sealer;
    this.#batchSize = positive(options.batchSize ?? 100, "batchSize");
    this.#pollIntervalMs = positive(options.pollIntervalMs ?? 1000, "pollIntervalMs");
    this.#maxInFlight = positive(options.maxInFlight ?? 1, "maxInFlight");
    this.#retryDelayMs = positive(options.retryDelayMs ?? 100, "retryDelayMs");
    this.#maxRetryDelayMs = Math.max(this.#retryDelayMs, options.maxRetryDelayMs ?? 10_000);
    this.#busyRetryMs = positive(options.busyRetryMs ?? 50, "busyRetryMs");
    this.#onError = options.onError ?? (() => {});
  }

  /** Starts the background loop (idempotent). */
  start(): void {
    if (this.#loop || this.#stopping) return;
    this.#loop = this.#run();
  }

  /** Says rows were just committed: the loop runs a cycle now instead of at the next poll. */
  poke(): void {
    this.#poked = true;
    if (this.#wakeOnPoke) this.#wake?.();
  }

  /** Stops the loop after the cycle in flight (its publishes finish and are marked). */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    await this.#loop;
  }

  /** Runs one cycle: up to `batchSize` rows, published and deleted. Throws when a publish failed. */
  async runOnce(): Promise<RelayCycle> {
    const result = await this.#database.tryWithLock(RELAY_LOCK_KEY, (db, lost) => this.#cycle(db, lost));
    return result.acquired ? { acquired: true, published: result.value } : { acquired: false, published: 0 };
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#stopping) {
      const poked = this.#poked;
      this.#poked = false;
      let delay: number;
      let wakeOnPoke = true;
      try {
        const cycle = await this.runOnce();
        failures = 0;
        if (!cycle.acquired) {
          // Another relay is mid-cycle and may have read before our commit: come back soon.
          if (poked) this.#poked = true;
          delay = poked || this.#poked ? this.#busyRetryMs : this.#pollIntervalMs;
        } else if (cycle.published === this.#batchSize || this.#poked) {
          delay = 0; // more rows are (or may be) waiting
        } else {
          delay = this.#pollIntervalMs;
        }
      } catch (error) {
        failures++;
        try {
          this.#onError(error);
        } catch {
          // A throwing error callback must not end the loop.
        }
        // Backing off: pokes must not turn a failing bus into a busy loop.
        wakeOnPoke = false;
        delay = Math.min(this.#maxRetryDelayMs, this.#retryDelayMs * 2 ** Math.min(failures - 1, 30));
      }
      if (delay > 0 && !this.#stopping) await this.#sleep(delay, wakeOnPoke);
    }
  }

  #sleep(ms: number, wakeOnPoke: boolean): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#wake = undefined;
        this.#wakeOnPoke = true;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
      this.#wakeOnPoke = wakeOnPoke;
    });
  }

  async #cycle(db: Database, lost: AbortSignal): Promise<number> {
    const rows = await db.select().from(outbox).orderBy(asc(outbox.seq)).limit(this.#batchSize);
    if (rows.length === 0) return 0;
    const { published, error } =
      this.#maxInFlight === 1
        ? await this.#publishInOrder(rows, lost)
        : await this.#publishPerSubject(rows, lost);
    if (published.length > 0) {
      await db.delete(outbox).where(inArray(outbox.seq, published));
    }
    if (error !== undefined) throw error;
    return published.length;
  }

  async #publishInOrder(
    rows: OutboxRow[],
    lost: AbortSignal,
  ): Promise<{ published: bigint[]; error?: unknown }> {
    const published: bigint[] = [];
    for (const row of rows) {
      try {
        await this.#publish(row, lost);
      } catch (error) {
        return { published, error };
      }
      published.push(row.seq);
    }
    return { published };
  }

  /** Subjects in parallel (up to `maxInFlight`), each subject's rows strictly one after another. */
  async #publishPerSubject(
    rows: OutboxRow[],
    lost: AbortSignal,
  ): Promise<{ published: bigint[]; error?: unknown }> {
    const published: bigint[] = [];
    let firstError: unknown;
    let free = this.#maxInFlight;
    const waiting: (() => void)[] = [];
    const acquire = async (): Promise<void> => {
      if (free > 0) {
        free--;
        return;
      }
      await new Promise<void>((resolve) => waiting.push(resolve));
    };
    const release = (): void => {
      const next = waiting.shift();
      if (next) next();
      else free++;
    };
    const tails = new Map<string, Promise<boolean>>();
    for (const row of rows) {
      const previous = tails.get(row.subject) ?? Promise.resolve(true);
      const tail = previous.then(async (previousPublished) => {
        // A failed row blocks the rest of its subject in this cycle: order before progress.
        if (!previousPublished) return false;
        await acquire();
        try {
          await this.#publish(row, lost);
          published.push(row.seq);
          return true;
        } catch (error) {
          firstError ??= error;
          return false;
        } finally {
          release();
        }
      });
      tails.set(row.subject, tail);
    }
    await Promise.all(tails.values());
    return firstError === undefined ? { published } : { published, error: firstError };
  }

  async #publish(row: OutboxRow, lost: AbortSignal): Promise<void> {
    // Without the lock another relay may own these rows by now: publishing on would duplicate
    // (deduped, but wasteful) and, past the bus's dedupe window, reorder. Leave them to it.
    if (lost.aborted) {
      throw new OutboxPublishError(`relay lock lost before publishing outbox message ${row.id}`, {
        cause: lost.reason,
      });
    }
    let message = { data: row.payload, headers: row.headers };
    if (row.sealed) {
      try {
        message = openMessage(this.#sealer, row.id, row.subject, row.payload, `outbox message ${row.id}`);
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new OutboxPublishError(`outbox message ${row.id} on ${row.subject} not published: ${reason}`, {
          cause: error,
        });
      }
    }
    // Rows from before sealing (`sealed` false) are published as they were written.
    const headers = Object.keys(message.headers).length > 0 ? { headers: message.headers } : {};
    try {
      await this.#bus.publish(row.subject, message.data, { id: row.id, ...headers });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new OutboxPublishError(
        `publishing outbox message ${row.id} on ${row.subject} failed: ${reason}`,
        {
          cause: error,
        },
      );
    }
  }
}

/** How much is waiting in the outbox (for metrics and health checks). */
export async function outboxBacklog<TSchema extends Record<string, unknown>>(
  db: Database<TSchema>,
): Promise<{ count: number; oldestCreatedAt: Date | null }> {
  const [row] = await db.select({ count: count(), oldest: min(outbox.createdAt) }).from(outbox);
  return { count: row?.count ?? 0, oldestCreatedAt: row?.oldest ?? null };
}

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`OutboxRelay: ${name} must be positive`);
  return value;
}
