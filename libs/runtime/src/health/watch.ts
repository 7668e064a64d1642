import type { Logger } from "../log/create-logger.js";
import { type BackoffOptions, messageOf, pause, retryWithBackoff } from "./backoff.js";
import type { DependencyHandle } from "./readiness.js";

export interface WatchDependencyOptions extends BackoffOptions {
  dependency: DependencyHandle;
  logger: Logger;
  /** Resolves when the dependency answers (e.g. `SELECT 1`); rejects when it does not. */
  probe: (signal: AbortSignal) => Promise<void>;
  /** Pause between two probes while it is up (default 2 s). */
  intervalMs?: number;
  /** How long a probe may take before it counts as failed (default 3 s). */
  probeTimeoutMs?: number;
}

/** A running watch: `failed` probes at once (an error event of the pool); `close` stops it. */
export interface DependencyWatch {
  /** Something saw the dependency fail: probe now rather than at the next interval. */
  failed(error: unknown): void;
  close(): Promise<void>;
}

const DEFAULT_INTERVAL_MS = 2000;
const DEFAULT_PROBE_TIMEOUT_MS = 3000;

/**
 * Probes a dependency that is up now (it was just opened) every `intervalMs`, and at once after a
 * `failed` report, and keeps its readiness entry current: on a failed probe it goes down —
 * logged, and the process reports NOT_SERVING — and is probed again with {@link retryWithBackoff}
 * until it answers, then goes up again (logged). One dead connection whose replacement answers
 * (a backend terminated, an idle timeout) is not an outage: the probe after it succeeds.
 */
export function watchDependency(options: WatchDependencyOptions): DependencyWatch {
  const { dependency, logger } = options;
  const intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
  const probeTimeoutMs = options.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
  const stop = new AbortController();
  let wake = new AbortController();
  dependency.up();

  const probe = async (): Promise<void> => {
    const timeout = AbortSignal.timeout(probeTimeoutMs);
    const signal = AbortSignal.any([timeout, stop.signal]);
    await Promise.race([
      options.probe(signal),
      new Promise<never>((_, reject) =>
        signal.addEventListener("abort", () => reject(new Error(`no answer within ${probeTimeoutMs} ms`)), {
          once: true,
        }),
      ),
    ]);
  };

  const loop = (async () => {
    while (!stop.signal.aborted) {
      await pause(intervalMs, AbortSignal.any([stop.signal, wake.signal])).catch(() => {});
      if (stop.signal.aborted) return;
      wake = new AbortController();
      let failure: unknown;
      try {
        await probe();
        continue;
      } catch (error) {
        if (stop.signal.aborted) return;
        failure = error;
      }
      const reason = messageOf(failure);
      dependency.down(reason);
      logger.warn(
        { dependency: dependency.name, error: reason },
        `${dependency.name} lost: not ready until it is back`,
      );
      try {
        await retryWithBackoff(probe, { ...options, dependency: dependency.name, signal: stop.signal });
      } catch {
        return; // stopped
      }
      dependency.up();
      logger.info({ dependency: dependency.name }, `${dependency.name} is back: ready`);
    }
  })();

  return {
    failed(error) {
      logger.debug(
        { dependency: dependency.name, error: messageOf(error) },
        `${dependency.name} error: probing now`,
      );
      wake.abort();
    },
    async close() {
      stop.abort(new Error("watch closed"));
      await loop;
    },
  };
}
