// Fuzzing every RPC (issue 13's standing defence): the five services of one domain as processes
// on Postgres and NATS get malformed and mutated requests on every gRPC RPC and every REST route.
// CI runs a short fixed-seed run; `npm run test:fuzz` explores (PHOENIX_FUZZ_SEED=random,
// PHOENIX_FUZZ_INPUTS inputs per target).
import { writeFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FuzzReport, runFuzz } from "../src/fuzz/run.js";
import { type FuzzTarget, startFuzzTarget } from "../src/fuzz/target.js";
import { randomSeed } from "../src/random-prng.js";

/** Inputs per target (each RPC over gRPC, each REST route) of the CI run. */
const CI_INPUTS_PER_TARGET = 20;
const CI_SEED = 1337;

function plan(env: NodeJS.ProcessEnv): { seed: number; inputs: number } {
  const raw = env.PHOENIX_FUZZ_SEED;
  const seed = raw === undefined || raw === "" ? CI_SEED : randomSeed({ PHOENIX_RANDOM_SEED: raw });
  const inputs = Number(env.PHOENIX_FUZZ_INPUTS ?? CI_INPUTS_PER_TARGET);
  if (!Number.isSafeInteger(inputs) || inputs < 1)
    throw new Error(`PHOENIX_FUZZ_INPUTS must be a positive integer`);
  return { seed, inputs };
}

/** Growth of a service's resident memory over the whole run that counts as unbounded. */
const RSS_GROWTH_BOUND = 256 * 1024 * 1024;

describe("fuzzing every RPC", () => {
  const { seed, inputs } = plan(process.env);
  let target: FuzzTarget;
  let report: FuzzReport;

  beforeAll(async () => {
    target = await startFuzzTarget();
  }, 240_000);

  afterAll(async () => {
    await target?.stop();
  }, 60_000);

  it(
    `survives ${inputs} malformed inputs per RPC and route with proper statuses and no state change (seed ${seed})`,
    async () => {
      report = await runFuzz(target, {
        seed,
        inputsPerTarget: inputs,
        concurrency: Number(process.env.PHOENIX_FUZZ_CONCURRENCY ?? 6),
        roundSize: Number(process.env.PHOENIX_FUZZ_ROUND ?? 1500),
        only: process.env.PHOENIX_FUZZ_ONLY ? new RegExp(process.env.PHOENIX_FUZZ_ONLY) : undefined,
        log: (line) => process.stderr.write(`[fuzz] ${line}\n`),
      });
      if (process.env.PHOENIX_FUZZ_REPORT)
        await writeFile(process.env.PHOENIX_FUZZ_REPORT, JSON.stringify(report, null, 2));
      const total = Object.values(report.inputs).reduce((a, b) => a + b, 0);
      process.stderr.write(
        `[fuzz] seed ${seed}: ${total} inputs in ${Math.round(report.durationMs / 1000)} s, ${report.findings.length} findings\n`,
      );
      expect(report.crashes).toEqual([]);
      expect(report.findings.slice(0, 20)).toEqual([]);
      expect(report.stateChanges).toEqual([]);
      for (const [service, after] of Object.entries(report.memory.after)) {
        expect(after - (report.memory.before[service] ?? 0), `${service} RSS growth`).toBeLessThan(
          RSS_GROWTH_BOUND,
        );
      }
      expect(total).toBe(Object.keys(report.inputs).length * inputs);
    },
    Math.max(600_000, inputs * 110 * 200),
  );
});
