export { type CreateLoggerOptions, createLogger, type Logger, REDACTED_FIELDS } from "./create-logger.js";
