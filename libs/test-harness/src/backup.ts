// The operator's backup and restore scripts (deploy/ops/backup.sh, restore.sh) run against a
// test deployment, so the documented procedure (docs/operations.md) is the one the tests drill.
import { execFile } from "node:child_process";
import { cp, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { DeploymentSecrets } from "./deployment.js";
import { REPO_ROOT } from "./service-process.js";

/** The four services whose databases a backup holds, as the scripts name them. */
export const BACKUP_SERVICES = ["auth", "delivery", "federation", "queue"] as const;

/** An ops script exited non-zero; `output` is its stdout and stderr. */
export class OpsScriptError extends Error {
  override readonly name = "OpsScriptError";
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(`${message}\n${output}`);
  }
}

/** What an ops script printed. */
export interface OpsScriptResult {
  stdout: string;
  stderr: string;
}

/**
 * The libpq variables (PGHOST, PGPORT, PGUSER, PGPASSWORD) of the Postgres server of
 * `serverUrl`, with which the scripts reach `<prefix><service>` databases.
 */
export function libpqEnv(serverUrl: string): Record<string, string> {
  const url = new URL(serverUrl);
  return {
    PGHOST: url.hostname,
    PGPORT: url.port || "5432",
    ...(url.username ? { PGUSER: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { PGPASSWORD: decodeURIComponent(url.password) } : {}),
  };
}

/**
 * `AUTH_DATABASE_URL`, … (the keys of the Helm chart's database Secret) for the databases
 * `<prefix><service>` on the server of `serverUrl`.
 */
export function serviceDatabaseUrls(serverUrl: string, prefix: string): Record<string, string> {
  return Object.fromEntries(
    BACKUP_SERVICES.map((service) => {
      const url = new URL(serverUrl);
      url.pathname = `/${prefix}${service}`;
      return [`${service.toUpperCase()}_DATABASE_URL`, url.toString()];
    }),
  );
}

/**
 * Runs `deploy/ops/<script>` with `args` and only `env` (plus PATH): the scripts see what an
 * operator's shell would give them, nothing of the test's environment.
 */
export function runOpsScript(
  script: "backup.sh" | "restore.sh",
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs = 120_000,
): Promise<OpsScriptResult> {
  return new Promise((resolve, reject) => {
    execFile(
      join(REPO_ROOT, "deploy", "ops", script),
      args,
      {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
        timeout: timeoutMs,
        killSignal: "SIGKILL",
      },
      (error, stdout, stderr) => {
        if (error)
          reject(
            new OpsScriptError(`${script} ${args.join(" ")} failed: ${error.message}`, `${stdout}${stderr}`),
          );
        else resolve({ stdout, stderr });
      },
    );
  });
}

/** Reads a `--keys-out` file of backup.sh (`NAME=value` lines) back into secrets. */
export async function readKeysFile(path: string): Promise<DeploymentSecrets> {
  const values = new Map(
    (await readFile(path, "utf8"))
      .split("\n")
      .filter((line) => line.includes("="))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)] as const),
  );
  const get = (name: keyof DeploymentSecrets): string => {
    const value = values.get(name);
    if (!value) throw new Error(`${path} has no ${name}`);
    return value;
  };
  return {
    AS_KEY_ENCRYPTION_KEY: get("AS_KEY_ENCRYPTION_KEY"),
    DS_REPLAY_MARKER_KEY: get("DS_REPLAY_MARKER_KEY"),
    QS_STORAGE_KEY: get("QS_STORAGE_KEY"),
    FEDERATION_KEY_ENCRYPTION_KEY: get("FEDERATION_KEY_ENCRYPTION_KEY"),
  };
}

/**
 * The all-in-one's backup (docs/operations.md): a copy of its stopped data directory, modes
 * kept (the key files are 0600).
 */
export async function copyDataDir(from: string, to: string): Promise<void> {
  await cp(from, to, { recursive: true, preserveTimestamps: true, errorOnExist: true, force: false });
}
