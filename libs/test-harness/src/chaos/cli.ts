// `npm run test:chaos`: the long chaos run, both setups, then the counts table. Seed from
// PHOENIX_CHAOS_SEED (a number, or `random`, the default), kills from PHOENIX_CHAOS_KILLS
// (default 100 for the services setup; the federation setup gets a quarter), fault window from
// PHOENIX_CHAOS_MINUTES (default 10). Needs root or the `postgres` user, Postgres 15 binaries and
// nats-server (private instances on loopback; the machine's own servers are not touched).
import { randomInt } from "node:crypto";
import { type ChaosReport, type ChaosSetup, formatChaosReports, runChaos } from "./run.js";

const seedText = process.env.PHOENIX_CHAOS_SEED ?? "random";
const seed = seedText === "random" ? randomInt(1, 2 ** 31) : Number(seedText);
const kills = Number(process.env.PHOENIX_CHAOS_KILLS ?? "100");
const minutes = Number(process.env.PHOENIX_CHAOS_MINUTES ?? "10");
const only = process.env.PHOENIX_CHAOS_SETUP as ChaosSetup | undefined;
if (!Number.isInteger(seed) || !Number.isInteger(kills) || !(minutes > 0)) {
  process.stderr.write("PHOENIX_CHAOS_SEED must be an integer or `random`, PHOENIX_CHAOS_KILLS an integer\n");
  process.exit(2);
}

// Interrupted: exit through process.exit, so the exit hooks kill the services and stop Postgres.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130));
const log = (line: string) => process.stderr.write(`[chaos] ${line}\n`);
log(`seed ${seed} (replay: PHOENIX_CHAOS_SEED=${seed})`);
const reports: ChaosReport[] = [];
const plans: { setup: ChaosSetup; kills: number; minutes: number }[] = [
  { setup: "services", kills, minutes },
  { setup: "federation", kills: Math.max(4, Math.round(kills / 4)), minutes: Math.max(1, minutes / 3) },
];
for (const plan of plans.filter((p) => only === undefined || p.setup === only)) {
  log(`${plan.setup}: ${plan.kills} kills over ${plan.minutes} min`);
  reports.push(
    await runChaos({
      setup: plan.setup,
      seed,
      kills: plan.kills,
      durationMs: plan.minutes * 60_000,
      log,
      logDir: process.env.PHOENIX_CHAOS_LOG_DIR,
    }),
  );
}
process.stdout.write(`\n${formatChaosReports(reports)}\n`);
const problems = reports.flatMap((r) =>
  [...r.problems, ...r.orderViolations.map((v) => `sender order: ${v}`)].map((p) => `${r.setup}: ${p}`),
);
if (problems.length > 0) {
  process.stdout.write(`\n${problems.length} problems:\n  ${problems.slice(0, 100).join("\n  ")}\n`);
  process.exit(1);
}
process.stdout.write("\nevery acknowledged message arrived once, in order; all views agree; nothing down\n");
// Lingering sockets of the clients must not keep the run alive.
process.exit(0);
