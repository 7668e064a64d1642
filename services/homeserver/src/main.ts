// The all-in-one homeserver as a process: flags and environment → runService → setupHomeserver.
import { runService } from "@phoenix/runtime/lifecycle";
import { CommandLineError, HELP, homeserverConfigSchema, parseCommandLine } from "./config.js";
import { setupHomeserver } from "./homeserver.js";

let commandLine: ReturnType<typeof parseCommandLine>;
try {
  commandLine = parseCommandLine(process.argv.slice(2));
} catch (error) {
  if (!(error instanceof CommandLineError)) throw error;
  process.stderr.write(`${error.message}\n\n${HELP}`);
  process.exit(2);
}
if (commandLine.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const env = { ...process.env, ...commandLine.env };
await runService({ config: homeserverConfigSchema, env, setup: (runtime) => setupHomeserver(runtime, env) });
