// Every package an installed @phoenix/* package imports at run time (its dist/) must be one of its
// "dependencies" or "peerDependencies": hoisting in a scratch project can hide a missing one.
// node declared-deps.mjs <node_modules/@phoenix directory>; exits 1 naming what is undeclared.
import { readdirSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { join } from "node:path";

const root = process.argv[2];
if (root === undefined) throw new Error("usage: node declared-deps.mjs <node_modules/@phoenix>");
const builtins = new Set(builtinModules);
// A bare specifier: a package name (scoped or not), optionally with a subpath.
const specifier =
  /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["']((?:@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*(?:\/[\w./-]*)?)["']/g;

function* jsFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* jsFiles(path);
    else if (entry.name.endsWith(".js")) yield path;
  }
}

let missing = 0;
for (const name of readdirSync(root)) {
  const dir = join(root, name);
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const declared = new Set([
    ...Object.keys(pkg.dependencies ?? {}),
    ...Object.keys(pkg.peerDependencies ?? {}),
  ]);
  const used = new Set();
  for (const file of jsFiles(join(dir, "dist"))) {
    for (const [, spec] of readFileSync(file, "utf8").matchAll(specifier)) {
      if (spec.startsWith("node:") || builtins.has(spec)) continue;
      const parts = spec.split("/");
      used.add(spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]);
    }
  }
  const undeclared = [...used].filter((dep) => !declared.has(dep)).sort();
  if (undeclared.length > 0) {
    console.error(`${pkg.name} imports undeclared: ${undeclared.join(", ")}`);
    missing++;
  } else {
    console.log(`${pkg.name}: ${used.size} runtime imports, all declared`);
  }
}
process.exit(missing > 0 ? 1 : 0);
