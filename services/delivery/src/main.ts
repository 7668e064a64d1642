// Wiring only: the DS module run as a process (config from the environment, database and bus,
// logger, metrics, gRPC server, signals, graceful shutdown).
import { runModule } from "@phoenix/runtime/module";
import { deliveryModule } from "./module.js";

await runModule(deliveryModule);
