import { z } from "zod";
import type { Database } from "../db/types.js";
import { createEmbeddedBus } from "./embedded-bus.js";
import { connectNatsBus } from "./nats-bus.js";
import type { Bus, BusLifecycleOptions } from "./types.js";

const unsetWhenEmpty = (value: unknown): unknown => (value === "" ? undefined : value);
const NATS_SERVER = /^(nats|tls):\/\/[^\s,/]+$/;

/**
 * Env fragment choosing the bus; merge it into a service's config schema
 * (`z.object({ ...busConfig.shape, ... })`). `NATS_URL` set selects NATS JetStream; unset selects
 * the embedded bus in the service's database.
 */
export const busConfig = z.object({
  /** `nats://host:port`, comma-separated for a cluster. */
  NATS_URL: z.preprocess(
    unsetWhenEmpty,
    z
      .string()
      .refine((value) => value.split(",").every((server) => NATS_SERVER.test(server.trim())), {
        message: "must be nats://host:port (comma-separated for several servers)",
      })
      .optional(),
  ),
  NATS_USER: z.preprocess(unsetWhenEmpty, z.string().optional()),
  NATS_PASSWORD: z.preprocess(unsetWhenEmpty, z.string().optional()),
  NATS_TOKEN: z.preprocess(unsetWhenEmpty, z.string().optional()),
  /**
   * Copies JetStream keeps of every stream the services create (default 1). A NATS cluster of
   * three runs 3, so a stream survives the loss of one server; a single server only 1.
   */
  NATS_STREAM_REPLICAS: z.preprocess(unsetWhenEmpty, z.coerce.number().int().min(1).max(5).optional()),
  /** How long shutdown waits for message handlers in flight (default 10000). */
  BUS_DRAIN_TIMEOUT_MS: z.preprocess(unsetWhenEmpty, z.coerce.number().int().min(0).max(600_000).optional()),
});

export type BusConfig = z.infer<typeof busConfig>;

/** The embedded bus was chosen (no `NATS_URL`) but no database was given to store it in. */
export class BusConfigError extends Error {
  override readonly name = "BusConfigError";
}

export interface OpenBusOptions extends Pick<BusLifecycleOptions, "onError"> {
  /** Connection name on NATS: the service and replica. */
  name: string;
  /** The database the embedded bus stores its messages in (needed when `NATS_URL` is unset). */
  db?: Database;
}

/** Opens the bus the config selects: NATS JetStream when `NATS_URL` is set, else the embedded one. */
export async function openBus(config: BusConfig, options: OpenBusOptions): Promise<Bus> {
  const lifecycle: BusLifecycleOptions = {
    ...(config.BUS_DRAIN_TIMEOUT_MS !== undefined ? { drainTimeoutMs: config.BUS_DRAIN_TIMEOUT_MS } : {}),
    ...(options.onError ? { onError: options.onError } : {}),
  };
  if (config.NATS_URL) {
    return connectNatsBus({
      ...lifecycle,
      servers: config.NATS_URL.split(",").map((server) => server.trim()),
      name: options.name,
      ...(config.NATS_USER !== undefined ? { user: config.NATS_USER } : {}),
      ...(config.NATS_PASSWORD !== undefined ? { pass: config.NATS_PASSWORD } : {}),
      ...(config.NATS_TOKEN !== undefined ? { token: config.NATS_TOKEN } : {}),
      ...(config.NATS_STREAM_REPLICAS !== undefined ? { streamReplicas: config.NATS_STREAM_REPLICAS } : {}),
    });
  }
  if (!options.db) {
    throw new BusConfigError("NATS_URL is not set and no database was given for the embedded bus");
  }
  return createEmbeddedBus({ ...lifecycle, db: options.db });
}
