import { setTimeout as sleep } from "node:timers/promises";

/** How long {@link eventually} keeps trying and what it reports when it gives up. */
export interface EventuallyOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** Pause between two calls of the check (default 50 ms). */
  intervalMs?: number;
  /**
   * What is awaited, for the error message ("the backlog", "3 payloads in bob's queue"); a
   * function is called when the wait fails, so it can describe the last state seen.
   */
  message?: string | (() => string);
}

/** {@link eventually} gave up: the check never held within its timeout. */
export class EventuallyTimeoutError extends Error {
  override readonly name = "EventuallyTimeoutError";
}

/** A check's result that means "not yet". */
type NotYet = false | null | undefined;

/**
 * Calls `check` until it returns something other than `false`, `null` or `undefined` and resolves
 * with that value; rejects with an {@link EventuallyTimeoutError} after `timeoutMs`. An error
 * thrown by `check` is not retried: it rejects at once (a failure is not something to wait out).
 */
export async function eventually<T>(
  check: () => T | Promise<T>,
  options: EventuallyOptions = {},
): Promise<Exclude<T, NotYet>> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== false && value !== null && value !== undefined) return value as Exclude<T, NotYet>;
    const left = deadline - Date.now();
    if (left <= 0) {
      const what = typeof options.message === "function" ? options.message() : options.message;
      throw new EventuallyTimeoutError(
        `timed out after ${timeoutMs} ms waiting for ${what ?? "a condition"}`,
      );
    }
    // The last try lands on the deadline rather than past it.
    await sleep(Math.min(intervalMs, left));
  }
}
