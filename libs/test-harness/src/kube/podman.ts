// The podman command line, as the Kubernetes stand-in uses it: every call bounded in time, its
// output captured, a failure reported with the command and podman's own words.
import { spawn } from "node:child_process";

/** A podman command failed (non-zero exit or timeout); carries what it printed. */
export class PodmanError extends Error {
  override readonly name = "PodmanError";
}

export interface PodmanResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface PodmanCallOptions {
  /** Kill the command after this long (default 120 s). */
  timeoutMs?: number;
  /** Resolve with the result instead of throwing on a non-zero exit. */
  allowFailure?: boolean;
  /** Written to the command's standard input. */
  input?: string;
}

/** Runs `podman ARGS…` and returns its output; throws {@link PodmanError} when it fails. */
export function podman(args: readonly string[], options: PodmanCallOptions = {}): Promise<PodmanResult> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    const child = spawn("podman", args, { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(new PodmanError(`podman ${args.join(" ")}: ${error.message}`, { cause: error }));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const result = { code: code ?? -1, stdout, stderr };
      if (result.code === 0 || options.allowFailure) return resolve(result);
      const why = signal ? `killed after ${timeoutMs} ms` : `exit ${code}`;
      reject(new PodmanError(`podman ${summarize(args)} (${why}): ${tail(stderr || stdout)}`));
    });
    // A command that exits before reading its input (a failed `podman exec`, say) closes the
    // pipe: the write then fails with EPIPE, which must not become an uncaught error — the exit
    // status above is what reports the failure.
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.input ?? "");
  });
}

/** True when podman is installed and can run containers here. */
export async function podmanWorks(): Promise<boolean> {
  try {
    return (
      (await podman(["info", "--format", "{{.Host.OCIRuntime.Name}}"], { timeoutMs: 30_000 })).code === 0
    );
  } catch {
    return false;
  }
}

function summarize(args: readonly string[]): string {
  const text = args.join(" ");
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

function tail(text: string): string {
  const trimmed = text.trim();
  return trimmed.length > 4000 ? `…${trimmed.slice(-4000)}` : trimmed;
}
