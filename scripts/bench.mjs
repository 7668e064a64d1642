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
let failed = 0;
for (const file of files) {
  console.log(`\n### ${file}`);
  const run = spawnSync(process.execPath, ["--conditions=source", "--import", "tsx", file], {
    stdio: "inherit",
    // BENCH_QUICK: the name libs/client/bench/cli.bench.ts reads.
    env: quick ? { ...process.env, PHOENIX_BENCH_QUICK: "1", BENCH_QUICK: "1" } : process.env,
  });
  if (run.status !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
