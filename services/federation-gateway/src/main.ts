// Wiring only: the federation gateway module run as a process (config from the environment,
// logger, metrics, signals, graceful shutdown).
import { runModule } from "@phoenix/runtime/module";
import { federationGatewayModule } from "./module.js";

await runModule(federationGatewayModule);
