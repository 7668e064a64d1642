#!/usr/bin/env node
// `npm start`: the all-in-one homeserver from its built JavaScript, in this process. It builds
// first (`tsc -b services/homeserver`) only when a source or build setting is newer than the last
// build: a no-op `tsc -b` costs 0.3–1.4 s on every start, this check a few milliseconds.
// Flags go to the homeserver: `npm start -- --help`.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const MAIN = join(ROOT, "services/homeserver/dist/main.js");
/** Written after every successful build; its mtime is the time that build started. */
const STAMP = join(ROOT, "services/homeserver/dist/.build-stamp");

/** The newest mtime (ms) of the build's inputs: every package's sources and build settings. */
function newestInput() {
  let newest = 0;
  const visit = (path) => {
    let stat;
    try {
      stat = statSync(path);
    } catch {
      return; // an optional file (e.g. a package without tsconfig.build.json)
    }
    // A directory's own mtime moves when a file in it is added, renamed or deleted.
    if (stat.mtimeMs > newest) newest = stat.mtimeMs;
    if (stat.isDirectory()) {
      for (const entry of readdirSync(path)) visit(join(path, entry));
    }
  };
  for (const file of ["package.json", "package-lock.json", "tsconfig.json", "tsconfig.base.json"]) {
    visit(join(ROOT, file));
  }
  for (const top of ["libs", "services"]) {
    for (const pkg of readdirSync(join(ROOT, top))) {
      const dir = join(ROOT, top, pkg);
      for (const file of ["package.json", "tsconfig.json", "src"]) visit(join(dir, file));
    }
  }
  return newest;
}

function upToDate() {
  if (!existsSync(MAIN) || !existsSync(STAMP)) return false;
  return newestInput() <= statSync(STAMP).mtimeMs;
}

if (!upToDate()) {
  const started = new Date();
  const tsc = join(ROOT, "node_modules/.bin/tsc");
  const build = spawnSync(tsc, ["-b", "services/homeserver"], { cwd: ROOT, stdio: "inherit" });
  if (build.status !== 0) {
    process.stderr.write(`npm start: the build failed (tsc -b services/homeserver, exit ${build.status})\n`);
    process.exit(build.status ?? 1);
  }
  // An edit made while tsc ran is newer than the stamp, so the next start builds again.
  writeFileSync(STAMP, "written by scripts/start.mjs after tsc -b services/homeserver\n");
  utimesSync(STAMP, started, started);
}

// main.ts reads its flags from process.argv.slice(2): the same here as under `node main.js`.
await import(pathToFileURL(MAIN).href);
