// The Delivery Service process: wiring only. runService owns config, logging, metrics, the gRPC
// server, signals and shutdown; setupDelivery opens the database and bus and starts the DS.
import { runService } from "@phoenix/runtime/lifecycle";
import { deliveryConfigSchema } from "./config.js";
import { setupDelivery } from "./service.js";

await runService({ config: deliveryConfigSchema, setup: (runtime) => setupDelivery(runtime) });
