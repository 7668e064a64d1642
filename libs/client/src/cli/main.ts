#!/usr/bin/env node
// The `phoenix` command: runs one command line and exits with its code.
import { runCli } from "./cli.js";

const interrupted = new Promise<void>((resolve) => {
  process.once("SIGINT", () => resolve());
  process.once("SIGTERM", () => resolve());
});
const code = await runCli(
  process.argv.slice(2),
  {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    interrupted,
  },
  process.env,
);
process.exit(code);
