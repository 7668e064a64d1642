// Wiring only: the edge gateway module run as a process (config from the environment, logger,
// metrics, signals, graceful shutdown closing the HTTP/WebSocket listener).
import { runModule } from "@phoenix/runtime/module";
import { edgeGatewayModule } from "./module.js";

await runModule(edgeGatewayModule);
