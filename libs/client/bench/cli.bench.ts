// Start-up cost of the `phoenix` CLI as a user feels it, against an all-in-one homeserver on
// 127.0.0.1. Two users register and connect through the CLI; then `--help`, `whoami` and `send`
// (to the contact's conversation) are each run RUNS times, and their median and p90 wall times
// printed for each build of the CLI:
//   dist    the checkout's bin (libs/client/bin/phoenix.js → dist/cli/main.js, built JavaScript),
//   bundle  what an installed package runs (dist/cli/bundle/, made here by scripts/bundle-cli.mjs
//           from the current dist, as prepack does).
// Runs of the builds are interleaved, so both see the same machine load.
// Usage: npx tsc -b && npm run bench -- cli
// PHOENIX_BENCH_QUICK=1 (npm run bench -- --quick): 3 runs each; CLI_BENCH_RUNS=N: N runs each; CLI_BENCH_COMPARE=PATH:
// time one more entry point (e.g. an older commit's build) alongside.
import { execFile, execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT, startDeployment } from "@phoenix/test-harness";

const quick = process.env.PHOENIX_BENCH_QUICK === "1";
const RUNS = quick ? 3 : Number(process.env.CLI_BENCH_RUNS ?? 15);
const BIN = join(REPO_ROOT, "libs/client/bin/phoenix.js");
const COMPARE = process.env.CLI_BENCH_COMPARE;
const MAIN = join(REPO_ROOT, "libs/client/dist/cli/main.js");
const BUNDLE = join(REPO_ROOT, "libs/client/dist/cli/bundle/main.js");
/** Bound of one CLI run (the machine may be loaded; a hung run must not hang the bench). */
const RUN_TIMEOUT_MS = 60_000;

class CliBenchError extends Error {
  override name = "CliBenchError";
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

function loadavg(): string {
  try {
    return readFileSync("/proc/loadavg", "utf8").trim();
  } catch {
    return "n/a";
  }
}

if (!existsSync(MAIN)) throw new CliBenchError(`${MAIN} is missing: run \`npx tsc -b\` first`);
execFileSync(process.execPath, [join(REPO_ROOT, "libs/client/scripts/bundle-cli.mjs")], {
  stdio: "inherit",
  timeout: 120_000,
});

const home = await mkdtemp(join(tmpdir(), "phoenix-cli-bench-"));
console.log(`loadavg before start: ${loadavg()}`);
const t0 = performance.now();
const deployment = await startDeployment({ kind: "all-in-one", domain: "bench.test", logLevel: "warn" });
console.log(
  `all-in-one homeserver ready in ${((performance.now() - t0) / 1000).toFixed(1)} s at ${deployment.url}`,
);

function phoenix(user: string, ...args: string[]): Promise<Run> {
  return phoenixWith(BIN, user, ...args);
}

function phoenixWith(bin: string, user: string, ...args: string[]): Promise<Run> {
  const argv = [bin, "--server", deployment.url, "--store", join(home, `${user}.sqlite`), ...args];
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      argv,
      { timeout: RUN_TIMEOUT_MS, env: { PATH: process.env.PATH ?? "", HOME: home } },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, stdout, stderr, ms: performance.now() - started });
      },
    );
  });
}

async function ok(user: string, ...args: string[]): Promise<Run> {
  const run = await phoenix(user, ...args);
  if (run.code !== 0)
    throw new CliBenchError(`phoenix ${args.join(" ")} exited ${run.code}: ${run.stderr.trim()}`);
  return run;
}

/** Repeats a read command until its output contains `text` (bounded). */
async function until(user: string, text: string, ...args: string[]): Promise<string> {
  for (let i = 0; i < 30; i++) {
    const { stdout } = await ok(user, ...args);
    if (stdout.includes(text)) return stdout;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new CliBenchError(`phoenix ${args.join(" ")} never showed "${text}"`);
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? Number.NaN;
}

async function timed(bin: string, args: string[]): Promise<Run> {
  const run = await phoenixWith(bin, "ann", ...args);
  if (run.code !== 0)
    throw new CliBenchError(`${bin} ${args.join(" ")} exited ${run.code}: ${run.stderr.trim()}`);
  return run;
}

try {
  await ok("ann", "register", "--name", "Ann", "--domain", deployment.domain);
  await ok("ben", "register", "--name", "Ben", "--domain", deployment.domain);
  await ok("ben", "handle", "ben_bench");
  await ok("ann", "connect", "ben_bench");
  const requests = await until("ben", "pending", "requests");
  const id = /#(\d+)\s+from/.exec(requests)?.[1];
  if (!id) throw new CliBenchError(`no request id in:\n${requests}`);
  await ok("ben", "accept", id);
  await until("ann", "Ben", "contacts");
  // The first send after the connection settles the conversation (it may process a commit).
  await ok("ann", "send", "Ben", "warm-up");

  const commands: [string, string[]][] = [
    ["--help", ["--help"]],
    ["whoami", ["whoami"]],
    ["send", ["send", "Ben", "hello"]],
  ];
  console.log(`\n${RUNS} runs each, sequential; loadavg before: ${loadavg()}`);
  const builds: [string, string][] = [
    ["dist", BIN],
    ["bundle", BUNDLE],
    ...(COMPARE ? [["compare", COMPARE] as [string, string]] : []),
  ];
  for (const [name, path] of builds) console.log(`${name.padEnd(7)} ${path}`);
  const bins = builds.map(([, path]) => path);
  console.log(
    `${"command".padEnd(16)}  ${"median ms".padStart(9)}  ${"p90 ms".padStart(7)}  ${"min ms".padStart(7)}`,
  );
  for (const [label, args] of commands) {
    const times: number[][] = bins.map(() => []);
    for (const bin of bins) await timed(bin, args); // one unmeasured run each: a cold page cache
    for (let i = 0; i < RUNS; i++)
      for (const [b, bin] of bins.entries()) times[b]?.push((await timed(bin, args)).ms);
    for (const [b, list] of times.entries()) {
      list.sort((x, y) => x - y);
      const row = [percentile(list, 0.5), percentile(list, 0.9), list[0] ?? Number.NaN];
      const name = `${label} ${builds[b]?.[0]}`;
      console.log(
        `${name.padEnd(16)}  ${row.map((v, k) => v.toFixed(0).padStart(k === 0 ? 9 : 7)).join("  ")}`,
      );
    }
  }
  console.log(`loadavg after: ${loadavg()} (a shared machine: compare runs of one sitting)`);
  // Ben still receives what was sent (the timed sends were real messages).
  await until("ben", "Ann: hello", "messages", "Ann");
} finally {
  await deployment.stop();
  await rm(home, { recursive: true, force: true });
}
