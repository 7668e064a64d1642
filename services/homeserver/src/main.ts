// The all-in-one homeserver as a process: flags and environment → startHomeserver (runService).
import { CommandLineError, HELP, parseCommandLine } from "./config.js";

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
// Loaded only now: `--help` and a bad flag answer without loading the services.
const { startHomeserver } = await import("./homeserver.js");
// A failed start has logged why and exited 1 (runService); SIGTERM/SIGINT shut down from here on.
await startHomeserver({ env: { ...process.env, ...commandLine.env }, ownProcess: true });
