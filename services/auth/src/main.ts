// The AS as a process: config from the environment, database (migrated at open), bus, service.
import { fileDescriptorSet } from "@phoenix/proto";
import { openBus } from "@phoenix/runtime/bus";
import { databaseConnectionFromConfig, openDatabase } from "@phoenix/runtime/db";
import { runService } from "@phoenix/runtime/lifecycle";
import { authConfigSchema } from "./config.js";
import { authMigrationsFolder, createAuthService } from "./service.js";

await runService({
  config: authConfigSchema,
  async setup({ config, logger, onShutdown }) {
    const database = await openDatabase({
      ...databaseConnectionFromConfig(config, { name: "auth" }),
      migrationsFolder: authMigrationsFolder,
    });
    onShutdown(database, "database");
    const bus = await openBus(config, {
      name: config.SERVICE_NAME,
      db: database.db,
      onError: (error) => logger.warn({ err: error }, "bus"),
    });
    onShutdown(bus, "bus");
    const service = await createAuthService({ db: database.db, bus, config, log: logger });
    onShutdown(service, "auth service");
    return { services: [service.registration], reflection: { descriptorSet: fileDescriptorSet() } };
  },
});
