// The federation gateway process: wiring only. runService owns config, logging, metrics, the
// public gRPC listener, signals and shutdown; setupFederationGateway builds the rest.
import { runService } from "@phoenix/runtime/lifecycle";
import { gatewayConfigSchema } from "./config.js";
import { setupFederationGateway } from "./setup.js";

await runService({ config: gatewayConfigSchema, setup: (runtime) => setupFederationGateway(runtime) });
