#!/usr/bin/env node
// `phoenix` bin entry: the compiled CLI (run `npx tsc -b libs/client` first).
await import("../dist/cli/main.js");
