import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NATS_SERVER_BINARY, waitForPort } from "./local-ports.js";

/** A nats-server of the test's own (JetStream, file store in a temp dir), to stop and start at will. */
export interface PrivateNats {
  readonly port: number;
  readonly url: string;
  readonly running: boolean;
  /** Starts the server (again, on the same port and store); resolves once it accepts connections. */
  start(): Promise<void>;
  /** Kills the server (SIGKILL: as a crash); its store stays for the next start. */
  stop(): Promise<void>;
  /** Stops it and removes its store. */
  close(): Promise<void>;
}

/** A private server on loopback `port` (not started: call `start()`); needs {@link NATS_SERVER_BINARY}. */
export async function privateNats(port: number): Promise<PrivateNats> {
  const dir = await mkdtemp(join(tmpdir(), "phoenix-nats-"));
  let child: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once("exit", resolve));
    running.kill("SIGKILL");
    await exited;
  };
  return {
    port,
    url: `nats://127.0.0.1:${port}`,
    get running() {
      return child !== undefined;
    },
    async start() {
      if (child) return;
      child = spawn(NATS_SERVER_BINARY, ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", dir], {
        stdio: "ignore",
      });
      await waitForPort(port);
    },
    stop,
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
