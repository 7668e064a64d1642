import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const REPO_ROOT = fileURLToPath(new URL("../../../../", import.meta.url));

export type LogLine = Record<string, unknown> & { msg?: string; level?: string };

/** A service started as a real child process, with its JSON log lines collected. */
export class ServiceProcess {
  readonly lines: LogLine[] = [];
  /** Raw output that was not a JSON line (stack traces of crashes, tsx errors). */
  readonly noise: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly waiters = new Set<() => void>();
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  private constructor(private readonly child: ChildProcess) {
    let buffered = "";
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString("utf8");
      let newline = buffered.indexOf("\n");
      while (newline >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          if (line.trim() !== "") this.noise.push(line);
        }
        newline = buffered.indexOf("\n");
      }
      for (const wake of [...this.waiters]) wake();
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", (chunk: Buffer) => this.noise.push(chunk.toString("utf8")));
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.exitInfo = { code, signal };
        for (const wake of [...this.waiters]) wake();
        resolve({ code, signal });
      });
    });
  }

  /** Spawns `node --conditions=source --import tsx <script>` from the repo root. */
  static spawn(script: string, env: Record<string, string>): ServiceProcess {
    const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", script], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    return new ServiceProcess(child);
  }

  /** Waits (bounded) for a log line matching `predicate`. */
  async waitForLog(
    predicate: (line: LogLine) => boolean,
    what: string,
    timeoutMs = 30_000,
  ): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.find(predicate);
      if (found) return found;
      if (this.exitInfo)
        throw new Error(`process exited (${JSON.stringify(this.exitInfo)}) before ${what}\n${this.dump()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}\n${this.dump()}`);
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.waiters.add(wake);
      });
    }
  }

  /** The gRPC and metrics ports from the startup log lines. */
  async ports(): Promise<{ grpc: number; metrics: number }> {
    const grpc = await this.waitForLog((l) => l.msg === "grpc server listening", "the gRPC listener");
    const metrics = await this.waitForLog((l) => l.msg === "metrics listening", "the metrics listener");
    return { grpc: Number(grpc.port), metrics: Number(metrics.port) };
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Test cleanup: make sure the process is gone. */
  async stop(): Promise<void> {
    if (this.exitInfo) return;
    this.child.kill("SIGKILL");
    await this.exited;
  }

  dump(): string {
    return [...this.lines.map((l) => JSON.stringify(l)), ...this.noise].join("\n");
  }
}
