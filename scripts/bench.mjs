#!/usr/bin/env node
// Runs every benchmark of the monorepo (`libs/*/bench/*.bench.ts`, `services/*/bench/*.bench.ts`)
// one after another in its own Node process, so they do not disturb each other.
// Usage: npm run bench [-- [--quick] [<substring filter>]]
// --quick sets PHOENIX_BENCH_QUICK=1 for every bench: tiny sizes, it only proves each bench still
// runs (CI); its figures mean nothing.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const filter = args.find((a) => a !== "--quick") ?? "";
const files = [];
for (const top of ["libs", "services"]) {
  if (!existsSync(top)) continue;
  for (const pkg of readdirSync(top)) {
    const dir = join(top, pkg, "bench");
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir).sort()) {
      const path = join(dir, f);
      if (f.endsWith(".bench.ts") && path.includes(filter)) files.push(path);
    }
  }
}
if (files.length === 0) {
  console.error(`no benchmark matches "${filter}"`);
  process.exit(1);
}
/** How long one bench may take in a quick run (they take seconds to about a minute). */
const QUICK_TIMEOUT_MS = 300_000;
let failed = 0;
for (const file of files) {
  console.log(`\n### ${file}`);
  const run = spawnSync(process.execPath, ["--conditions=source", "--import", "tsx", file], {
    stdio: "inherit",
    env: quick ? { ...process.env, PHOENIX_BENCH_QUICK: "1" } : process.env,
    // A quick run only proves the bench still runs: one that hangs is a failure, not a wait.
    ...(quick ? { timeout: QUICK_TIMEOUT_MS, killSignal: "SIGKILL" } : {}),
  });
  if (run.error?.code === "ETIMEDOUT")
    console.error(`${file}: no result within ${QUICK_TIMEOUT_MS / 1000} s; killed`);
  if (run.status !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
