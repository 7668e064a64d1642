// `migrate` as a process (the image's `migrate` command, a Kubernetes Job or init container):
// applies every configured service database's migrations, then exits 0; on failure one line on
// stderr and exit 1.
import { ConfigError } from "@phoenix/runtime/config";
import { migrateDatabases } from "./migrate.js";

try {
  const migrated = await migrateDatabases(process.env, ({ service, variable, url }) => {
    process.stdout.write(`migrate: ${service} migrated (${variable}=${url})\n`);
  });
  process.stdout.write(`migrate: done (${migrated.map((m) => m.service).join(", ")})\n`);
  process.exit(0);
} catch (error) {
  const message =
    error instanceof ConfigError
      ? error.issues.map((issue) => `${issue.variable}: ${issue.reason}`).join("; ")
      : error instanceof Error
        ? error.message
        : String(error);
  process.stderr.write(`migrate: failed: ${message.replace(/\s*\n\s*/g, " ")}\n`);
  process.exit(1);
}
