// The seeds and draws of the randomized runs (src/random-prng.ts): which runs a test file makes
// under each setting of PHOENIX_RANDOM_SEED / _ROUNDS / _ACTIONS, and replayable draws.
import { describe, expect, it } from "vitest";
import { Prng, RandomSeedError, randomRuns } from "../src/random-prng.js";

const CI = [
  { seed: 11, actions: 200 },
  { seed: 22, actions: 80 },
];

describe("randomRuns", () => {
  it("runs the fixed CI seeds by default", () => {
    expect(randomRuns(CI, 200, {})).toEqual(CI);
    expect(randomRuns(CI, 200, { PHOENIX_RANDOM_SEED: "" })).toEqual(CI);
  });

  it("replays one given seed with the full number of actions", () => {
    expect(randomRuns(CI, 200, { PHOENIX_RANDOM_SEED: "1185304655" })).toEqual([
      { seed: 1185304655, actions: 200 },
    ]);
  });

  it("draws PHOENIX_RANDOM_ROUNDS fresh seeds for PHOENIX_RANDOM_SEED=random (default 3)", () => {
    const three = randomRuns(CI, 200, { PHOENIX_RANDOM_SEED: "random" });
    expect(three).toHaveLength(3);
    for (const r of three) {
      expect(Number.isSafeInteger(r.seed) && r.seed >= 0 && r.seed < 2 ** 31).toBe(true);
      expect(r.actions).toBe(200);
    }
    expect(randomRuns(CI, 200, { PHOENIX_RANDOM_SEED: "random", PHOENIX_RANDOM_ROUNDS: "5" })).toHaveLength(
      5,
    );
  });

  it("PHOENIX_RANDOM_ACTIONS sets the actions of every run", () => {
    expect(randomRuns(CI, 200, { PHOENIX_RANDOM_ACTIONS: "40" }).map((r) => r.actions)).toEqual([40, 40]);
    expect(randomRuns(CI, 200, { PHOENIX_RANDOM_SEED: "7", PHOENIX_RANDOM_ACTIONS: "40" })).toEqual([
      { seed: 7, actions: 40 },
    ]);
  });

  it("refuses settings that are not numbers in range, naming the variable", () => {
    expect(() => randomRuns(CI, 200, { PHOENIX_RANDOM_SEED: "abc" })).toThrow(RandomSeedError);
    expect(() => randomRuns(CI, 200, { PHOENIX_RANDOM_SEED: String(2 ** 31) })).toThrow(
      /PHOENIX_RANDOM_SEED/,
    );
    expect(() => randomRuns(CI, 200, { PHOENIX_RANDOM_SEED: "random", PHOENIX_RANDOM_ROUNDS: "0" })).toThrow(
      /PHOENIX_RANDOM_ROUNDS/,
    );
    expect(() => randomRuns(CI, 200, { PHOENIX_RANDOM_ACTIONS: "-1" })).toThrow(/PHOENIX_RANDOM_ACTIONS/);
  });
});

describe("Prng", () => {
  it("draws the same sequence from the same seed, another from another seed", () => {
    const draw = (seed: number) => {
      const p = new Prng(seed);
      return Array.from({ length: 20 }, () => p.int(0, 1_000_000));
    };
    expect(draw(42)).toEqual(draw(42));
    expect(draw(42)).not.toEqual(draw(43));
  });
});
