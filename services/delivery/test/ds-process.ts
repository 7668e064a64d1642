// The DS as a real child process (`node --conditions=source --import tsx src/main.ts`), its JSON
// log lines collected so tests can wait for "grpc server listening" and read the port.
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const MAIN = "services/delivery/src/main.ts";

type LogLine = Record<string, unknown> & { msg?: string };
type Exit = { code: number | null; signal: NodeJS.Signals | null };

export class DsProcess {
  readonly lines: LogLine[] = [];
  readonly other: string[] = [];
  readonly exited: Promise<Exit>;
  private exit: Exit | undefined;

  private constructor(private readonly child: ChildProcess) {
    let pending = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      pending += chunk.toString("utf8");
      const parts = pending.split("\n");
      pending = parts.pop() ?? "";
      for (const part of parts) {
        try {
          this.lines.push(JSON.parse(part) as LogLine);
        } catch {
          if (part.trim() !== "") this.other.push(part);
        }
      }
    });
    child.stderr?.on("data", (chunk: Buffer) => this.other.push(chunk.toString("utf8")));
    this.exited = new Promise((resolve) =>
      child.once("exit", (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      }),
    );
  }

  /** Starts the DS's main.ts with exactly this environment (plus PATH/HOME). */
  static spawn(env: Record<string, string>): DsProcess {
    const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", MAIN], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    return new DsProcess(child);
  }

  /** The gRPC port once the server listens (bounded wait; fails early if the process exits). */
  async grpcPort(timeoutMs = 60_000): Promise<number> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const line = this.lines.find((l) => l.msg === "grpc server listening");
      if (line !== undefined) return Number(line.port);
      if (this.exit !== undefined)
        throw new Error(`DS exited (${JSON.stringify(this.exit)}):\n${this.dump()}`);
      if (Date.now() > until) throw new Error(`DS did not start listening:\n${this.dump()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Cleanup: the process is gone afterwards, whatever state it was in. */
  async kill(): Promise<Exit> {
    if (this.exit === undefined) this.child.kill("SIGKILL");
    return this.exited;
  }

  dump(): string {
    return [...this.lines.map((l) => JSON.stringify(l)), ...this.other].join("\n");
  }
}
