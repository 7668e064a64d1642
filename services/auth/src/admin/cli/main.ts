#!/usr/bin/env node
// The `phoenix-admin` command: runs one command line and exits with its code.
import { runAdminCli } from "./cli.js";

const code = await runAdminCli(
  process.argv.slice(2),
  {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  },
  process.env,
);
process.exit(code);
