// Real clients of one deployment, all through its edge gateway (the REST/WebSocket transport),
// and the CLI users (the waits and views the scenarios use come from @phoenix/test-harness).
import { execFile, spawn } from "node:child_process";
import { join } from "node:path";
import type { PhoenixClient } from "@phoenix/client";
import { type Deployment, REPO_ROOT, TestClients } from "@phoenix/test-harness";

/** The clients (and CLI users) of one deployment; `close()` releases them all. */
export class World {
  private constructor(
    readonly deployment: Deployment,
    private readonly clients: TestClients,
  ) {}

  static async create(deployment: Deployment): Promise<World> {
    return new World(deployment, await TestClients.create(`phoenix-e2e-${deployment.kind}-`));
  }

  /** The temp directory of the stores (and the CLI's HOME). */
  get dir(): string {
    return this.clients.dir;
  }

  register(name: string): Promise<PhoenixClient> {
    return this.clients.register(this.deployment.url, this.deployment.domain, name);
  }

  /** A new PhoenixClient (and transport) on the store file of `name`, as after an app restart. */
  reopen(name: string): Promise<PhoenixClient> {
    return this.clients.reopen(this.deployment.url, name);
  }

  close(): Promise<void> {
    return this.clients.close();
  }

  /** Runs the `phoenix` CLI as user `user` (its own store file) and waits for it (bounded). */
  phoenix(user: string, ...args: string[]): Promise<CliRun> {
    return new Promise((done) => {
      execFile(process.execPath, this.cliArgs(user, args), cliOptions(this.dir), (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        done({ code, stdout, stderr });
      });
    });
  }

  /** Starts a long-running CLI command (`watch`) of `user`; stop it with `interrupt()`. */
  spawnPhoenix(user: string, ...args: string[]): CliSession {
    const child = spawn(process.execPath, this.cliArgs(user, args), {
      ...cliOptions(this.dir),
      stdio: ["ignore", "pipe", "pipe"],
    });
    const session: CliSession = {
      stdout: "",
      stderr: "",
      exited: new Promise((resolve) => child.once("exit", (code) => resolve(code ?? 1))),
      interrupt: () => {
        if (child.exitCode === null) child.kill("SIGINT");
      },
      kill: () => {
        if (child.exitCode === null) child.kill("SIGKILL");
      },
    };
    child.stdout.on("data", (chunk: Buffer) => {
      session.stdout += chunk.toString("utf8");
    });
    child.stderr.on("data", (chunk: Buffer) => {
      session.stderr += chunk.toString("utf8");
    });
    return session;
  }

  private cliArgs(user: string, args: readonly string[]): string[] {
    return [
      "--conditions=source",
      "--import",
      "tsx",
      CLI,
      "--server",
      this.deployment.url,
      "--store",
      join(this.dir, `cli-${user}.sqlite`),
      ...args,
    ];
  }
}

const CLI = join(REPO_ROOT, "libs/client/src/cli/main.ts");

function cliOptions(home: string) {
  return { cwd: REPO_ROOT, timeout: 60_000, env: { PATH: process.env.PATH ?? "", HOME: home } };
}

/** A finished CLI command. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** A running CLI command. */
export interface CliSession {
  stdout: string;
  stderr: string;
  /** The exit code. */
  exited: Promise<number>;
  /** Ctrl-C. */
  interrupt(): void;
  kill(): void;
}
