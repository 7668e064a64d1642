// The homeserver as a real child process (`src/main.ts` through tsx, as `npm start` runs it),
// with its JSON log lines collected and its ready line awaited.
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const REPO_ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const MAIN = "services/homeserver/src/main.ts";

/** One pino line. */
export interface LogLine {
  level: string;
  msg: string;
  service?: string;
  url?: string;
  exitCode?: number;
  [key: string]: unknown;
}

/** How a process ended. */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A homeserver child process. */
export class HomeserverProcess {
  readonly lines: LogLine[] = [];
  /** Raw stdout/stderr, for failure messages and non-JSON output (`--help`). */
  output = "";
  readonly exited: Promise<Exit>;
  private readonly child: ChildProcess;
  private exit: Exit | undefined;

  private constructor(args: readonly string[], env: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", MAIN, ...args], {
      cwd: REPO_ROOT,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let pending = "";
    const take = (chunk: Buffer) => {
      const text = chunk.toString("utf8");
      this.output += text;
      pending += text;
      const parts = pending.split("\n");
      pending = parts.pop() ?? "";
      for (const part of parts) {
        try {
          this.lines.push(JSON.parse(part) as LogLine);
        } catch {
          // not a log line (help text, a crash trace): kept in `output`
        }
      }
    };
    this.child.stdout?.on("data", take);
    this.child.stderr?.on("data", take);
    this.exited = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  /**
   * Starts `main.ts` with `args` and an environment built from `env` alone (nothing of the test
   * process leaks in except PATH/HOME), so `DATABASE_URL`/`NATS_URL` are only there when given.
   */
  static spawn(args: readonly string[], env: Record<string, string>): HomeserverProcess {
    return new HomeserverProcess(args, {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      METRICS_PORT: "0",
      ...env,
    });
  }

  /** Waits for the "homeserver ready" line and returns the public URL it names. */
  async ready(timeoutMs = 180_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.lines.find((l) => l.msg.startsWith("homeserver ready"));
      if (line?.url) return line.url;
      if (this.exit) throw new Error(`the homeserver exited (${JSON.stringify(this.exit)}):\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`the homeserver did not get ready:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.exit) this.child.kill(signal);
  }

  /** SIGTERM and the exit (the test's cleanup path: SIGKILL if it hangs). */
  async stop(): Promise<Exit> {
    if (this.exit) return this.exit;
    this.signal("SIGTERM");
    const timer = setTimeout(() => this.signal("SIGKILL"), 30_000);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** GET/POST JSON through the edge gateway. */
export async function call(
  url: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${url}${path}`, {
    method: body === undefined ? "GET" : "POST",
    ...(body === undefined
      ? {}
      : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}
