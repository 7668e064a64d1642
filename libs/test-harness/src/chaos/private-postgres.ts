// A Postgres cluster of the chaos run's own, so it can crash it: initdb into a temp dir, run by the
// `postgres` user (initdb and postgres refuse root) through `runuser` when the test runs as root,
// listening on one loopback port only, trust authentication for local connections. `crash()` is
// `pg_ctl stop -m immediate` (no checkpoint: the next start replays the WAL, as after a power
// loss); `start()` brings it back on the same directory and port. The machine's own Postgres is
// never touched.
import { execFile, execFileSync } from "node:child_process";
import { chmod, chown, mkdtemp, rm } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { waitForPort } from "@phoenix/runtime/testing";

const run = promisify(execFile);

/** Where Debian's Postgres 15 binaries live. */
export const POSTGRES_BIN = "/usr/lib/postgresql/15/bin";

/** The private cluster cannot be set up (no binaries, no `postgres` user). */
export class PrivatePostgresError extends Error {
  override readonly name = "PrivatePostgresError";
}

/** A private cluster: `url` reaches it as the `postgres` superuser while it runs. */
export interface PrivatePostgres {
  readonly port: number;
  readonly url: string;
  /** Starts the server (again) and resolves once it accepts connections. */
  start(): Promise<void>;
  /** `pg_ctl stop -m immediate`: every backend killed, no shutdown checkpoint (a crash). */
  crash(): Promise<void>;
  /** Stops it (immediate) and removes its directory. */
  close(): Promise<void>;
}

/** Creates (initdb) a cluster for loopback `port`; not started: call `start()`. */
export async function privatePostgres(port: number): Promise<PrivatePostgres> {
  const root = await mkdtemp(join(tmpdir(), "phoenix-chaos-pg-"));
  const data = join(root, "data");
  const asRoot = userInfo().uid === 0;
  if (asRoot) {
    const { stdout } = await run("id", ["-u", "postgres"]).catch(() => {
      throw new PrivatePostgresError("running as root, but there is no `postgres` user to run Postgres as");
    });
    const uid = Number(stdout.trim());
    const { stdout: gidText } = await run("id", ["-g", "postgres"]);
    await chown(root, uid, Number(gidText.trim()));
  }
  await chmod(root, 0o700);
  const pg = async (binary: string, args: readonly string[]): Promise<void> => {
    const command = asRoot ? "runuser" : join(POSTGRES_BIN, binary);
    const argv = asRoot ? ["-u", "postgres", "--", join(POSTGRES_BIN, binary), ...args] : [...args];
    await run(command, argv, { cwd: root, timeout: 120_000 });
  };
  await pg("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
  const options = [
    `-p ${port}`,
    "-c listen_addresses=127.0.0.1",
    `-c unix_socket_directories=${root}`,
    // Five services, replicas and migrations open pools of their own.
    "-c max_connections=300",
    "-c shared_buffers=64MB",
  ].join(" ");
  let running = false;
  // pg_ctl daemonizes the server: a test process that exits without `close()` must stop it.
  const stopAtExit = () => {
    const argv = ["stop", "-D", data, "-m", "immediate", "-w"];
    try {
      if (asRoot) execFileSync("runuser", ["-u", "postgres", "--", join(POSTGRES_BIN, "pg_ctl"), ...argv]);
      else execFileSync(join(POSTGRES_BIN, "pg_ctl"), argv);
    } catch {
      // already stopped
    }
  };
  const crash = async (): Promise<void> => {
    if (!running) return;
    running = false;
    process.off("exit", stopAtExit);
    await pg("pg_ctl", ["stop", "-D", data, "-m", "immediate", "-w"]);
  };
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async start() {
      process.once("exit", stopAtExit);
      await pg("pg_ctl", ["start", "-D", data, "-w", "-t", "120", "-l", join(root, "log"), "-o", options]);
      running = true;
      await waitForPort(port);
    },
    crash,
    async close() {
      await crash().catch(() => undefined);
      await rm(root, { recursive: true, force: true });
    },
  };
}
