#!/usr/bin/env node
// Bundles the compiled `phoenix` CLI (dist/cli/main.js, after `tsc -b`) into dist/cli/bundle/:
// one file per dynamic import of the CLI (esbuild code splitting), so a command still loads only
// what it needs, but as a few files instead of ~400 modules to resolve, read and link — about
// half of a short command's CPU time. better-sqlite3 stays external (a native addon).
// The installed bin uses the bundle; a checkout's bin runs dist/cli/main.js (always current).
// Usage: node scripts/bundle-cli.mjs [OUTDIR]   (run by prepack; the CLI bench runs it too)
import { rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outdir = resolve(process.argv[2] ?? join(root, "dist/cli/bundle"));
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: [join(root, "dist/cli/main.js")],
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  external: ["better-sqlite3"],
  // CommonJS dependencies (grpc-js, ws) call require(): give every chunk one.
  banner: {
    js: 'import { createRequire as __phoenixRequire } from "node:module";\nconst require = __phoenixRequire(import.meta.url);',
  },
  chunkNames: "chunk-[hash]",
  logLevel: "warning",
  legalComments: "eof",
});
process.stderr.write(`bundled the phoenix CLI into ${outdir}\n`);
