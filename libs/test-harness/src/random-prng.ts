// The seeded random source of the randomized scenarios: the same seed draws the same actions on
// every machine, so a failing run is replayed by its seed (PHOENIX_RANDOM_SEED).
import { randomInt } from "node:crypto";
import { uniformInt } from "pure-rand/distribution/uniformInt";
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";

/** The environment variable that replays a run: `PHOENIX_RANDOM_SEED=<seed>`. */
export const RANDOM_SEED_ENV = "PHOENIX_RANDOM_SEED";

/** A bad `PHOENIX_RANDOM_SEED` (or `PHOENIX_RANDOM_ACTIONS`, `PHOENIX_RANDOM_ROUNDS`). */
export class RandomSeedError extends Error {
  override readonly name = "RandomSeedError";
}

/** The environment variable that sets the number of actions of every run: `PHOENIX_RANDOM_ACTIONS=40`. */
export const RANDOM_ACTIONS_ENV = "PHOENIX_RANDOM_ACTIONS";

/** How many fresh seeds `PHOENIX_RANDOM_SEED=random` draws: `PHOENIX_RANDOM_ROUNDS=5` (default 3). */
export const RANDOM_ROUNDS_ENV = "PHOENIX_RANDOM_ROUNDS";

/** The `PHOENIX_RANDOM_SEED` value that draws fresh seeds (exploration). */
export const FRESH_SEEDS = "random";

/**
 * The seed of this run: `PHOENIX_RANDOM_SEED` when it is a number, a fresh random one when it is
 * unset, empty or `random`.
 */
export function randomSeed(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[RANDOM_SEED_ENV];
  if (raw === undefined || raw === "" || raw === FRESH_SEEDS) return randomInt(2 ** 31);
  const seed = Number(raw);
  if (!Number.isSafeInteger(seed) || seed < 0 || seed >= 2 ** 31)
    throw new RandomSeedError(
      `${RANDOM_SEED_ENV} must be an integer in [0, 2^31) or "${FRESH_SEEDS}", not "${raw}"`,
    );
  return seed;
}

/** One randomized run: its seed and how many actions it draws. */
export interface RandomRunPlan {
  seed: number;
  actions: number;
}

/**
 * The runs a randomized test makes. By default the fixed `ci` list — seeds known to pass, so CI
 * is deterministic; `PHOENIX_RANDOM_SEED=<seed>` replays that one seed and
 * `PHOENIX_RANDOM_SEED=random` draws `PHOENIX_RANDOM_ROUNDS` (default 3) fresh ones
 * (exploration), each with `actions` actions. `PHOENIX_RANDOM_ACTIONS` sets the actions of every run.
 */
export function randomRuns(
  ci: readonly RandomRunPlan[],
  actions: number,
  env: NodeJS.ProcessEnv = process.env,
): RandomRunPlan[] {
  const actionsOverride = positiveInteger(env, RANDOM_ACTIONS_ENV);
  const raw = env[RANDOM_SEED_ENV];
  let runs: RandomRunPlan[];
  if (raw === undefined || raw === "") runs = ci.map((r) => ({ ...r }));
  else if (raw === FRESH_SEEDS) {
    const rounds = positiveInteger(env, RANDOM_ROUNDS_ENV) ?? 3;
    runs = Array.from({ length: rounds }, () => ({ seed: randomSeed(env), actions }));
  } else runs = [{ seed: randomSeed(env), actions }];
  return actionsOverride === undefined ? runs : runs.map((r) => ({ ...r, actions: actionsOverride }));
}

function positiveInteger(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new RandomSeedError(`${name} must be a positive integer, not "${raw}"`);
  return n;
}

/** Seeded draws (xoroshiro128+ from pure-rand). */
export class Prng {
  private readonly rng;

  constructor(readonly seed: number) {
    this.rng = xoroshiro128plus(seed);
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return uniformInt(this.rng, min, max);
  }

  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("pick from an empty list");
    return items[this.int(0, items.length - 1)] as T;
  }

  /** `n` distinct elements (all of them when the list is shorter), in random order. */
  sample<T>(items: readonly T[], n: number): T[] {
    const copy = [...items];
    for (let i = copy.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
    }
    return copy.slice(0, Math.min(n, copy.length));
  }

  /** A key drawn with probability proportional to its weight (weights > 0). */
  weighted<K extends string>(weights: ReadonlyMap<K, number>): K {
    const entries = [...weights].filter(([, w]) => w > 0);
    if (entries.length === 0) throw new RangeError("no positive weight");
    // Integer weights in thousandths keep the draw exact and platform independent.
    const total = entries.reduce((sum, [, w]) => sum + Math.round(w * 1000), 0);
    let ticket = this.int(0, total - 1);
    for (const [key, w] of entries) {
      ticket -= Math.round(w * 1000);
      if (ticket < 0) return key;
    }
    return (entries[entries.length - 1] as [K, number])[0];
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.int(0, 999_999) < p * 1_000_000;
  }
}
