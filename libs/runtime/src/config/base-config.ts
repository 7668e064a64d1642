import { z } from "zod";
import { envBytes, envDuration, envEnum, envPort, envString } from "./fields.js";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Per-service defaults for {@link serviceConfig}. */
export interface ServiceConfigDefaults {
  /** Default of `SERVICE_NAME` (bound to every log line and metric). */
  serviceName: string;
  /** Default of `GRPC_PORT` (default 50051). */
  grpcPort?: number;
  /** Default of `METRICS_PORT` (default 9464). */
  metricsPort?: number;
}

/**
 * The env schema every service extends (`serviceConfig({...}).extend({...})`, or spread
 * `.shape` together with the db/bus fragments). Defaults bind to loopback: exposing a port is an
 * explicit decision (`GRPC_HOST=0.0.0.0`).
 */
export function serviceConfig(defaults: ServiceConfigDefaults) {
  return z.object({
    SERVICE_NAME: envString({
      default: defaults.serviceName,
      pattern: /^[a-z][a-z0-9-]{0,62}$/,
      patternHint: "must be lower-case letters, digits and dashes",
    }),
    LOG_LEVEL: envEnum(LOG_LEVELS, { default: "info" }),
    GRPC_HOST: envString({ default: "127.0.0.1" }),
    GRPC_PORT: envPort({ default: defaults.grpcPort ?? 50051 }),
    METRICS_HOST: envString({ default: "127.0.0.1" }),
    METRICS_PORT: envPort({ default: defaults.metricsPort ?? 9464 }),
    /** Largest request or response message; bigger requests get RESOURCE_EXHAUSTED. */
    GRPC_MAX_MESSAGE_BYTES: envBytes({ default: 4 * 1024 * 1024, min: 1024, max: 1024 * 1024 * 1024 }),
    /** Deadline applied to calls whose client sent none (unary and client-streaming RPCs). */
    GRPC_DEFAULT_DEADLINE_MS: envDuration({ default: 30_000, min: 1 }),
    /** How long a shutdown waits for in-flight calls before cancelling them. */
    SHUTDOWN_GRACE_MS: envDuration({ default: 10_000, min: 0 }),
    /** Pause between reporting NOT_SERVING and closing the listener, so load balancers notice. */
    SHUTDOWN_DELAY_MS: envDuration({ default: 0, min: 0 }),
  });
}

/** The base schema with `SERVICE_NAME` required. */
export const baseConfigSchema = serviceConfig({ serviceName: "" }).extend({
  SERVICE_NAME: envString({
    pattern: /^[a-z][a-z0-9-]{0,62}$/,
    patternHint: "must be lower-case letters, digits and dashes",
  }),
});

/** The parsed base configuration; service configs are supersets of it. */
export type BaseConfig = z.output<typeof baseConfigSchema>;
