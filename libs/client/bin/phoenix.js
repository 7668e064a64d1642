#!/usr/bin/env node
// `phoenix` bin entry: the compiled CLI. An installed @phoenix/client ships dist/ (its prepack
// builds it) with the CLI bundled into dist/cli/bundle/ (a few files instead of ~400 modules:
// half the start-up). A checkout's bin (not under node_modules) runs dist/cli/main.js, which
// `npx tsc -b libs/client` keeps current; a bundle left there by a pack could be stale.
import { existsSync } from "node:fs";
import * as nodeModule from "node:module";

// Node 22.1+ can keep compiled module code between runs (most of a short command's start-up is
// compiling modules); Node 20 has no module.enableCompileCache and skips this.
if ("enableCompileCache" in nodeModule && typeof nodeModule.enableCompileCache === "function") {
  try {
    nodeModule.enableCompileCache();
  } catch {
    // A read-only cache directory only costs speed.
  }
}
const bundle = new URL("../dist/cli/bundle/main.js", import.meta.url);
const installed = import.meta.url.includes("/node_modules/");
await import(installed && existsSync(bundle) ? bundle.href : "../dist/cli/main.js");
