// The entry point of the old shape, over `federationGatewayModule`: kept only until
// services/homeserver embeds the module through startModules.
import type { Bus } from "@phoenix/runtime/bus";
import type { Env } from "@phoenix/runtime/config";
import type { DatabaseHandle } from "@phoenix/runtime/db";
import type { RunningProcess } from "@phoenix/runtime/lifecycle";
import { type RunModuleOptions, runModule } from "@phoenix/runtime/module";
import type { GatewayConfig } from "./config.js";
import type { FederationGateway } from "./gateway.js";
import { federationGatewayModule } from "./module.js";

/** Options of {@link startFederationGateway}. */
export interface StartGatewayOptions {
  /** The gateway's environment (GRPC_PORT / FEDERATION_INTERNAL_PORT / METRICS_PORT 0 pick free ports). */
  env: Env;
  /** Used instead of opening DATABASE_URL / DATA_DIR; the embedder closes it. */
  database?: DatabaseHandle;
  /** Used instead of opening NATS_URL / the embedded bus; the embedder closes it. */
  bus?: Bus;
  logDestination?: RunModuleOptions<GatewayConfig>["logDestination"];
}

/** A gateway running in this process (tests, harnesses, the all-in-one homeserver). */
export interface RunningGateway {
  gateway: FederationGateway;
  runtime: RunningProcess<GatewayConfig>;
  /** Public FederationService port. */
  port: number;
  /** Internal FederationProxyService port. */
  internalPort: number;
  /** Graceful shutdown; rejects if something failed to close. */
  stop(): Promise<void>;
}

/** Runs `federationGatewayModule` in-process, without signal handlers or process exit. */
export async function startFederationGateway(options: StartGatewayOptions): Promise<RunningGateway> {
  const running = await runModule(federationGatewayModule, {
    env: options.env,
    signals: false,
    exit: false,
    ...(options.logDestination ? { logDestination: options.logDestination } : {}),
    resources: {
      ...(options.database ? { database: options.database } : {}),
      ...(options.bus ? { bus: options.bus } : {}),
    },
  });
  const { gateway, internalPort } = running.instance;
  const port = running.grpcPort;
  if (port === undefined) throw new Error("the federation gateway module serves gRPC but has no port");
  return {
    gateway,
    runtime: running.process,
    port,
    internalPort,
    async stop() {
      const code = await running.process.shutdown("stop");
      if (code !== 0) throw new Error(`the federation gateway shut down with code ${code}`);
    },
  };
}
