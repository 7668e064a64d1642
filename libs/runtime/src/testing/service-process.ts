// A service as a real child process: an entry point of the repository run through tsx exactly as
// `npm start -w <package>` runs it, its pino lines collected, its ready line or port awaited
// (bounded), SIGTERM then SIGKILL on stop. One implementation for every test that spawns a service.
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { EventuallyTimeoutError, eventually } from "./eventually.js";
import { acceptsConnections } from "./local-ports.js";

/** The repository root (workspace paths of entry points are relative to it). */
export const REPO_ROOT = fileURLToPath(new URL("../../../..", import.meta.url));

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

/** What to run: an entry point of the repository and its complete environment. */
export interface ServiceProcessOptions {
  /** A name for error messages (`auth`, `homeserver`, …). */
  name: string;
  /** Entry point relative to the repository root, e.g. `services/auth/src/main.ts`. */
  entry: string;
  args?: readonly string[];
  /**
   * The whole environment of the child: nothing of the test process leaks in except PATH and
   * HOME, so `DATABASE_URL`/`NATS_URL` reach it only when given.
   */
  env: Record<string, string>;
  /**
   * A command the child runs under, e.g. `ip netns exec <ns>` (`inNamespace` of the test
   * harness's netns.ts). It must exec its arguments, so that the child's pid and signals are the
   * service's own.
   */
  commandPrefix?: readonly string[];
}

/** A child process did not get ready: it exited or missed its deadline. Carries its output. */
export class ProcessStartError extends Error {
  override readonly name = "ProcessStartError";
}

/** Output kept per process (the tail, for error messages): enough for a stack trace and context. */
const OUTPUT_LIMIT = 1_000_000;
/** Output quoted in an error message. */
const ERROR_TAIL = 6_000;
/** How long a process may take to log a line or open a port unless a caller says otherwise. */
const START_TIMEOUT_MS = 120_000;

/**
 * Extra `node` flags for every child, from the test process's environment (space-separated), e.g.
 * `PHOENIX_CHILD_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"` to profile a deployment's
 * services (Node refuses `--cpu-prof` in NODE_OPTIONS). A profile is written when a child exits
 * normally (SIGTERM), not when it is killed.
 */
const CHILD_NODE_ARGS = (process.env.PHOENIX_CHILD_NODE_ARGS ?? "").split(" ").filter((a) => a !== "");

/** Children still running: killed if the test process exits without stopping them (a crash). */
const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

/** A child process running one entry point of the repository. */
export class ServiceProcess {
  readonly name: string;
  /** Parsed pino lines of stdout and stderr, in order. */
  readonly lines: LogLine[] = [];
  /** Raw stdout + stderr (the last megabyte), for failure messages and non-JSON output (`--help`). */
  output = "";
  readonly exited: Promise<Exit>;
  private readonly child: ChildProcess;
  private exit: Exit | undefined;

  protected constructor(options: ServiceProcessOptions) {
    this.name = options.name;
    const [command = process.execPath, ...args] = [
      ...(options.commandPrefix ?? []),
      process.execPath,
      ...CHILD_NODE_ARGS,
      "--conditions=source",
      "--import",
      "tsx",
      options.entry,
      ...(options.args ?? []),
    ];
    this.child = spawn(command, args, {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let pending = "";
    const take = (chunk: Buffer) => {
      const text = chunk.toString("utf8");
      this.output += text;
      if (this.output.length > OUTPUT_LIMIT) this.output = this.output.slice(-OUTPUT_LIMIT / 2);
      pending += text;
      const parts = pending.split("\n");
      pending = parts.pop() ?? "";
      for (const part of parts) {
        if (!part.startsWith("{")) continue; // help text, a crash trace: kept in `output`
        try {
          this.lines.push(JSON.parse(part) as LogLine);
        } catch {
          // a line that only looks like JSON: kept in `output`
        }
      }
    };
    this.child.stdout?.on("data", take);
    this.child.stderr?.on("data", take);
    live.add(this.child);
    this.exited = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => {
        live.delete(this.child);
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  /**
   * Starts `entry` through tsx with `args` and exactly `env` (plus PATH and HOME), under
   * `commandPrefix` when given.
   */
  static spawn(options: ServiceProcessOptions): ServiceProcess {
    return new ServiceProcess(options);
  }

  /** The process's pid, for reports. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Whether the process has exited. */
  get running(): boolean {
    return this.exit === undefined;
  }

  /**
   * Waits until a log line matches `ready` and returns it. Rejects with a {@link ProcessStartError}
   * holding the tail of the output when the process exits first or `timeoutMs` passes.
   */
  async waitForLine(
    ready: (line: LogLine) => boolean,
    options: { what: string; timeoutMs?: number },
  ): Promise<LogLine> {
    return this.awaitStart(options, () => this.lines.find(ready), { verb: "log", intervalMs: 50 });
  }

  /**
   * The port a listening line names once the process logs it: `grpc server listening` for the
   * gRPC port, `metrics listening` for the metrics endpoint (both bound to port 0 in tests).
   */
  async listeningPort(msg: string, timeoutMs?: number): Promise<number> {
    const line = await this.waitForLine((l) => l.msg === msg, { what: `"${msg}"`, timeoutMs });
    return Number(line.port);
  }

  /**
   * Waits until 127.0.0.1:`port` accepts connections (whatever the log level: services bind their
   * listener only once set up). Rejects like {@link waitForLine}.
   */
  async waitForPort(port: number, options: { what: string; timeoutMs?: number }): Promise<void> {
    await this.awaitStart(options, () => acceptsConnections(port), { verb: "open", intervalMs: 100 });
  }

  /** A {@link ProcessStartError} naming this process, with the tail of its output. */
  startError(problem: string): ProcessStartError {
    return new ProcessStartError(`${this.name} ${problem}; its output:\n${this.output.slice(-ERROR_TAIL)}`);
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.exit) this.child.kill(signal);
  }

  /** SIGTERM, then SIGKILL if it has not exited after `killAfterMs`; resolves with the exit. */
  async stop(killAfterMs = 20_000): Promise<Exit> {
    if (this.exit) return this.exit;
    this.signal("SIGTERM");
    const timer = setTimeout(() => this.signal("SIGKILL"), killAfterMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Test cleanup of a process in any state: SIGKILL, resolves with the exit. */
  async kill(): Promise<Exit> {
    this.signal("SIGKILL");
    return this.exited;
  }

  /** Polls `found` until it yields a value, failing early when the process exits first. */
  private async awaitStart<T>(
    options: { what: string; timeoutMs?: number },
    found: () => T | undefined | false | Promise<T | undefined | false>,
    poll: { verb: "log" | "open"; intervalMs: number },
  ): Promise<T> {
    try {
      return (await eventually(
        async () => {
          const value = await found();
          if (value !== undefined && value !== false) return value;
          if (this.exit)
            throw this.startError(`exited (${JSON.stringify(this.exit)}) before ${options.what}`);
          return undefined;
        },
        { timeoutMs: options.timeoutMs ?? START_TIMEOUT_MS, intervalMs: poll.intervalMs },
      )) as T;
    } catch (error) {
      if (error instanceof EventuallyTimeoutError)
        throw this.startError(`did not ${poll.verb} ${options.what} in time`);
      throw error;
    }
  }
}
