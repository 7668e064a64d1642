/** Exponential backoff parameters for deliveries to a peer. */
export interface BackoffConfig {
  /** Wait after the first failure. */
  initialMs: number;
  /** Upper bound of any wait. */
  maxMs: number;
  /** Growth per failure (default 2). */
  factor?: number;
  /** Fraction of the delay randomised away (0 … 1, default 0.2) so peers do not retry in lockstep. */
  jitter?: number;
}

/**
 * The wait before the next attempt after `failures` consecutive failures (1 = first failure):
 * initialMs · factor^(failures-1), capped at maxMs, minus up to `jitter` of it. `random` is
 * injectable for tests.
 */
export function backoffDelay(
  failures: number,
  config: BackoffConfig,
  random: () => number = Math.random,
): number {
  const factor = config.factor ?? 2;
  const jitter = Math.min(Math.max(config.jitter ?? 0.2, 0), 1);
  const exponent = Math.max(0, Math.min(failures - 1, 60));
  const raw = Math.min(config.maxMs, config.initialMs * factor ** exponent);
  return Math.max(0, Math.round(raw * (1 - jitter * random())));
}
