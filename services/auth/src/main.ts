// Wiring only: the AS module run as a process (config from the environment, database migrated at
// open, bus, logger, metrics, signals, graceful shutdown).
import { runModule } from "@phoenix/runtime/module";
import { authModule } from "./module.js";

await runModule(authModule);
