#!/usr/bin/env node
// `phoenix` bin entry: the compiled CLI. An installed @phoenix/client ships dist/ (its prepack
// builds it); in a checkout run `npx tsc -b libs/client` first.
// Node 22.1+ can keep compiled module code between runs (most of a short command's start-up is
// compiling modules); Node 20 has no module.enableCompileCache and skips this.
import * as nodeModule from "node:module";

if ("enableCompileCache" in nodeModule && typeof nodeModule.enableCompileCache === "function") {
  try {
    nodeModule.enableCompileCache();
  } catch {
    // A read-only cache directory only costs speed.
  }
}
await import("../dist/cli/main.js");
