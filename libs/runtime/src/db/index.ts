export {
  type AdminAuditRow,
  adminAudit,
  adminSettings,
  deleteAdminAuditBefore,
  getAdminSetting,
  insertAdminAudit,
  putAdminSetting,
} from "./admin-tables.js";
export { bytea, int8 } from "./columns.js";
export {
  type DatabaseConfig,
  DatabaseConfigError,
  type DatabaseConnectionFromConfigOptions,
  databaseConfig,
  databaseConnectionFromConfig,
} from "./config.js";
export { type EmbeddedClient, EmbeddedStore, EmbeddedStoreError } from "./embedded-store.js";
export {
  type DatabaseConnectionOptions,
  type DatabaseHandle,
  DatabaseOpenError,
  DatabaseUnavailableError,
  type LockResult,
  MigrationError,
  type OpenDatabaseOptions,
  openDatabase,
  type PgConnectionOptions,
  type PgliteConnectionOptions,
  type PoolStats,
  redactUrl,
} from "./open-database.js";
export { isRetryable, sqlState, type TransactionOptions, transaction } from "./transaction.js";
export type { Database, Transaction } from "./types.js";
