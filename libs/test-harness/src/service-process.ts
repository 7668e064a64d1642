// The all-in-one homeserver as a child process, on the one process spawner of the runtime's
// testing module (re-exported here for the harness's users).
import { ServiceProcess } from "@phoenix/runtime/testing";

export {
  type Exit,
  freePorts,
  type LogLine,
  ProcessStartError,
  REPO_ROOT,
  ServiceProcess,
  type ServiceProcessOptions,
} from "@phoenix/runtime/testing";

/**
 * The all-in-one homeserver (`services/homeserver/src/main.ts`) as a child process; `env` is its
 * whole environment (the metrics endpoint on a free port unless given).
 */
export class HomeserverProcess extends ServiceProcess {
  static start(
    args: readonly string[],
    env: Record<string, string> = {},
    options: { name?: string; commandPrefix?: readonly string[] } = {},
  ): HomeserverProcess {
    return new HomeserverProcess({
      name: options.name ?? "homeserver",
      entry: "services/homeserver/src/main.ts",
      args,
      env: { METRICS_PORT: "0", ...env },
      commandPrefix: options.commandPrefix,
    });
  }

  /** Waits (bounded) for the "homeserver ready" line and returns the public URL it names. */
  async ready(timeoutMs = 180_000): Promise<string> {
    const line = await this.waitForLine(
      (l) => l.msg.startsWith("homeserver ready") && typeof l.url === "string",
      {
        what: "its ready line",
        timeoutMs,
      },
    );
    return String(line.url);
  }
}
