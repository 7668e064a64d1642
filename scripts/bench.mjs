#!/usr/bin/env node
// Runs every benchmark of the monorepo (`libs/*/bench/*.bench.ts`, `services/*/bench/*.bench.ts`)
// one after another in its own Node process, so they do not disturb each other.
// Usage: npm run bench [-- <substring filter>]
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

const filter = process.argv[2] ?? "";
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
  });
  if (run.status !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
