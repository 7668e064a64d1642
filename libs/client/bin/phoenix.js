#!/usr/bin/env node
// `phoenix` bin entry: the compiled CLI. An installed @phoenix/client ships dist/ (its prepack
// builds it); in a checkout run `npx tsc -b libs/client` first.
await import("../dist/cli/main.js");
