// The Queuing Service process: wiring only. runService owns config, logging, metrics, the gRPC
// server, signals and shutdown; setupQueue opens the database and bus and starts the QS.
import { runService } from "@phoenix/runtime/lifecycle";
import { queueConfigSchema } from "./config.js";
import { setupQueue } from "./setup.js";

await runService({ config: queueConfigSchema, setup: (runtime) => setupQueue(runtime) });
