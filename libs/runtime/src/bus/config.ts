import type { PayloadSealer } from "@phoenix/crypto";
import { z } from "zod";
import type { Database } from "../db/types.js";
import { createEmbeddedBus } from "./embedded-bus.js";
import { connectNatsBus, type NatsTlsOptions } from "./nats-bus.js";
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
  /** PEM CA bundle that verifies the NATS server (turns TLS on; default: the system's CAs). */
  NATS_TLS_CA_FILE: z.preprocess(unsetWhenEmpty, z.string().optional()),
  /** PEM client certificate, when the NATS server verifies clients (with NATS_TLS_KEY_FILE). */
  NATS_TLS_CERT_FILE: z.preprocess(unsetWhenEmpty, z.string().optional()),
  /** PEM key of NATS_TLS_CERT_FILE. */
  NATS_TLS_KEY_FILE: z.preprocess(unsetWhenEmpty, z.string().optional()),
  /**
   * Copies JetStream keeps of every stream the services create (default 1). A NATS cluster of
   * three runs 3, so a stream survives the loss of one server; a single server only 1.
   */
  NATS_STREAM_REPLICAS: z.preprocess(unsetWhenEmpty, z.coerce.number().int().min(1).max(5).optional()),
  /**
   * Backstop of every stream (handled messages leave at once by the streams' retention): a
   * message older than this many ms is dropped even if unhandled (default 604800000, 7 days; 0: off).
   */
  BUS_MAX_AGE_MS: z.preprocess(unsetWhenEmpty, z.coerce.number().int().min(0).optional()),
  /** Backstop: payload bytes a stream may hold; a publish beyond it is refused and retried (default 1 GiB; 0: off). */
  BUS_MAX_BYTES: z.preprocess(unsetWhenEmpty, z.coerce.number().int().min(0).optional()),
  /** Backstop: messages a stream may hold, like BUS_MAX_BYTES (default 1000000; 0: off). */
  BUS_MAX_MSGS: z.preprocess(unsetWhenEmpty, z.coerce.number().int().min(0).optional()),
  /** How long shutdown waits for message handlers in flight (default 10000). */
  BUS_DRAIN_TIMEOUT_MS: z.preprocess(unsetWhenEmpty, z.coerce.number().int().min(0).max(600_000).optional()),
});

export type BusConfig = z.infer<typeof busConfig>;

/** The TLS files of the config, when any is set. */
function natsTls(config: BusConfig): NatsTlsOptions | undefined {
  const tls: NatsTlsOptions = {
    ...(config.NATS_TLS_CA_FILE !== undefined ? { caFile: config.NATS_TLS_CA_FILE } : {}),
    ...(config.NATS_TLS_CERT_FILE !== undefined ? { certFile: config.NATS_TLS_CERT_FILE } : {}),
    ...(config.NATS_TLS_KEY_FILE !== undefined ? { keyFile: config.NATS_TLS_KEY_FILE } : {}),
  };
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    throw new BusConfigError("NATS_TLS_CERT_FILE and NATS_TLS_KEY_FILE must be set together");
  }
  return Object.keys(tls).length > 0 ? tls : undefined;
}

/** The embedded bus was chosen (no `NATS_URL`) but no database was given to store it in. */
export class BusConfigError extends Error {
  override readonly name = "BusConfigError";
}

export interface OpenBusOptions extends Pick<BusLifecycleOptions, "onError"> {
  /** Connection name on NATS: the service and replica. */
  name: string;
  /** The database the embedded bus stores its messages in (needed when `NATS_URL` is unset). */
  db?: Database;
  /** Seals the embedded bus's stored messages (ignored on NATS, which encrypts its own store). */
  sealer?: PayloadSealer;
}

/** Opens the bus the config selects: NATS JetStream when `NATS_URL` is set, else the embedded one. */
export async function openBus(config: BusConfig, options: OpenBusOptions): Promise<Bus> {
  const lifecycle: BusLifecycleOptions = {
    ...(config.BUS_DRAIN_TIMEOUT_MS !== undefined ? { drainTimeoutMs: config.BUS_DRAIN_TIMEOUT_MS } : {}),
    ...(options.onError ? { onError: options.onError } : {}),
    streamLimits: {
      ...(config.BUS_MAX_AGE_MS !== undefined ? { maxAgeMs: config.BUS_MAX_AGE_MS } : {}),
      ...(config.BUS_MAX_BYTES !== undefined ? { maxBytes: config.BUS_MAX_BYTES } : {}),
      ...(config.BUS_MAX_MSGS !== undefined ? { maxMsgs: config.BUS_MAX_MSGS } : {}),
    },
  };
  if (config.NATS_URL) {
    const tls = natsTls(config);
    return connectNatsBus({
      ...lifecycle,
      servers: config.NATS_URL.split(",").map((server) => server.trim()),
      name: options.name,
      ...(config.NATS_USER !== undefined ? { user: config.NATS_USER } : {}),
      ...(config.NATS_PASSWORD !== undefined ? { pass: config.NATS_PASSWORD } : {}),
      ...(config.NATS_TOKEN !== undefined ? { token: config.NATS_TOKEN } : {}),
      ...(tls !== undefined ? { tls } : {}),
      ...(config.NATS_STREAM_REPLICAS !== undefined ? { streamReplicas: config.NATS_STREAM_REPLICAS } : {}),
    });
  }
  if (!options.db) {
    throw new BusConfigError("NATS_URL is not set and no database was given for the embedded bus");
  }
  return createEmbeddedBus({
    ...lifecycle,
    db: options.db,
    ...(options.sealer ? { sealer: options.sealer } : {}),
  });
}
