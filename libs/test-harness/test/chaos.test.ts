// The short chaos run of CI (docs/chaos.md): a fixed seed, both setups, faults while clients send
// and change groups; every acknowledged message must arrive once per intended recipient, in
// per-sender order, every group view agree, every message be processable and every process be back.
import { existsSync } from "node:fs";
import { NATS_SERVER_BINARY } from "@phoenix/runtime/testing";
import { describe, expect, it } from "vitest";
import { POSTGRES_BIN } from "../src/chaos/private-postgres.js";
import { type ChaosReport, formatChaosReports, runChaos } from "../src/chaos/run.js";

/** The CI seed (its faults are a pure function of it: src/chaos/schedule.ts). */
const SEED = 20_171;

const missing = [NATS_SERVER_BINARY, `${POSTGRES_BIN}/initdb`].filter((path) => !existsSync(path));
const log = process.env.PHOENIX_CHAOS_VERBOSE === "1" ? (line: string) => console.log(line) : undefined;
/** Where to keep every process's output (killed ones included), e.g. to read after a failure. */
const logDir = process.env.PHOENIX_CHAOS_LOG_DIR;

function totalKills(report: ChaosReport): number {
  return Object.values(report.kills).reduce((a, b) => a + b, 0);
}

describe.skipIf(missing.length > 0)("chaos (short run)", () => {
  it("five services, the DS and the QS twice: 20 SIGKILLs, a NATS restart and a Postgres crash lose nothing", async () => {
    const report = await runChaos({
      setup: "services",
      seed: SEED,
      kills: 20,
      durationMs: 60_000,
      replicas: { delivery: 2, queue: 2 },
      groupChanges: true,
      log,
      logDir,
    });
    console.log(formatChaosReports([report]));
    expect(report.problems).toEqual([]);
    expect(report.orderViolations).toEqual([]);
    expect(totalKills(report)).toBe(20);
    expect(report.natsRestarts + report.postgresRestarts).toBe(2);
    // The clients did send through the faults (a run that sent nothing would prove nothing).
    expect(report.counts.acknowledged).toBeGreaterThan(20);
    expect(report.counts.delivered).toBeGreaterThan(20);
  }, 600_000);

  it("two federating domains: homeserver kills and a cut federation link lose nothing", async () => {
    const report = await runChaos({
      setup: "federation",
      seed: SEED,
      kills: 4,
      durationMs: 40_000,
      groupChanges: false,
      log,
      logDir,
    });
    console.log(formatChaosReports([report]));
    expect(report.problems).toEqual([]);
    expect(report.orderViolations).toEqual([]);
    expect(totalKills(report)).toBe(4);
    expect(report.linkCuts).toBe(1);
    expect(report.counts.acknowledged).toBeGreaterThan(10);
  }, 420_000);
});
