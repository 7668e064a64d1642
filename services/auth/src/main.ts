// The AS as a process: config from the environment, database (migrated at open), bus, service.
import { fileDescriptorSet } from "@phoenix/proto";
import { openServiceStorage, runService } from "@phoenix/runtime/lifecycle";
import { authConfigSchema } from "./config.js";
import { authMigrationsFolder, createAuthService } from "./service.js";

await runService({
  config: authConfigSchema,
  async setup(runtime) {
    const { config, logger, onShutdown } = runtime;
    const { database, bus } = await openServiceStorage(runtime, {
      name: "auth",
      migrationsFolder: authMigrationsFolder,
    });
    const service = await createAuthService({ db: database.db, bus, config, log: logger });
    onShutdown(service, "auth service");
    return { services: [service.registration], reflection: { descriptorSet: fileDescriptorSet() } };
  },
});
