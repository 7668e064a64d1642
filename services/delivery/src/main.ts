// The Delivery Service process: wiring only (config → logger → database → bus → DS → gRPC).
import { openBus } from "@phoenix/runtime/bus";
import { loadConfig } from "@phoenix/runtime/config";
import { databaseConnectionFromConfig, openDatabase } from "@phoenix/runtime/db";
import { createLogger } from "@phoenix/runtime/log";
import { deliveryConfigSchema, paddingBuckets } from "./config.js";
import { DELIVERY_MIGRATIONS } from "./index.js";
import { startDelivery } from "./service.js";

const config = loadConfig(deliveryConfigSchema);
const logger = createLogger({ service: config.SERVICE_NAME, level: config.LOG_LEVEL });
const database = await openDatabase({
  ...databaseConnectionFromConfig(config, { name: "delivery" }),
  migrationsFolder: DELIVERY_MIGRATIONS,
});
const bus = await openBus(config, {
  name: config.SERVICE_NAME,
  db: database.db,
  onError: (err) => logger.warn({ err }, "bus"),
});
const running = await startDelivery({
  database,
  bus,
  domain: config.DS_DOMAIN,
  logger,
  clientInactivityMs: config.DS_CLIENT_INACTIVITY,
  groupInactivityMs: config.DS_GROUP_INACTIVITY,
  reservationTtlMs: config.DS_RESERVATION_TTL,
  paddingBuckets: paddingBuckets(config),
  sweepIntervalMs: config.DS_SWEEP_INTERVAL,
  grpc: config,
});
logger.info({ port: running.port, domain: config.DS_DOMAIN }, "delivery service listening");

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, "shutting down");
  try {
    await running.stop();
    await bus.close();
    await database.close();
    process.exit(0);
  } catch (err) {
    logger.error({ err }, "shutdown failed");
    process.exit(1);
  }
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
