// The entry point of the old shape, over `deliveryModule`: kept only until services/homeserver
// and libs/test-harness embed the module through startModules.
import type { Bus } from "@phoenix/runtime/bus";
import type { Env } from "@phoenix/runtime/config";
import type { DatabaseHandle } from "@phoenix/runtime/db";
import type { FederationRouter } from "@phoenix/runtime/federation";
import type { RunningProcess } from "@phoenix/runtime/lifecycle";
import { type RunModuleOptions, runModule } from "@phoenix/runtime/module";
import type { DeliveryConfig } from "./config.js";
import { deliveryModuleWith } from "./module.js";
import type { DeliveryService } from "./service.js";

/** Options of {@link startDelivery}. */
export interface StartDeliveryOptions {
  /** The DS's environment (GRPC_PORT / METRICS_PORT 0 pick free ports). */
  env: Env;
  /** Used instead of opening DATABASE_URL / DATA_DIR; the embedder closes it. */
  database?: DatabaseHandle;
  /** Used instead of opening NATS_URL / the embedded bus; the embedder closes it. */
  bus?: Bus;
  /** Shared federation router (the embedder closes it); default: from FEDERATION_PROXY_ADDRESS. */
  router?: FederationRouter;
  /** Clock in ms since the epoch (default Date.now). */
  now?: () => number;
  logDestination?: RunModuleOptions<DeliveryConfig>["logDestination"];
}

/** The DS running in this process (the all-in-one homeserver, the test harness). */
export interface RunningDelivery {
  service: DeliveryService;
  runtime: RunningProcess<DeliveryConfig>;
  port: number;
  /** Graceful shutdown (drain, then close what the DS opened); rejects if something failed to close. */
  stop(): Promise<void>;
}

/** Runs `deliveryModule` in-process, without signal handlers or process exit. */
export async function startDelivery(options: StartDeliveryOptions): Promise<RunningDelivery> {
  const running = await runModule(deliveryModuleWith(options.now ? { now: options.now } : {}), {
    env: options.env,
    signals: false,
    exit: false,
    ...(options.logDestination ? { logDestination: options.logDestination } : {}),
    resources: {
      ...(options.database ? { database: options.database } : {}),
      ...(options.bus ? { bus: options.bus } : {}),
      ...(options.router ? { router: options.router } : {}),
    },
  });
  const port = running.grpcPort;
  if (port === undefined) throw new Error("the delivery module serves gRPC but has no port");
  return {
    service: running.instance.service,
    runtime: running.process,
    port,
    async stop() {
      const code = await running.process.shutdown("stop");
      if (code !== 0) throw new Error(`the delivery service shut down with code ${code}`);
    },
  };
}
