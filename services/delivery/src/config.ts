import { busConfig, busTopology } from "@phoenix/runtime/bus";
import {
  envAddressList,
  envBytes,
  envDomain,
  envDuration,
  envInt,
  envList,
  envSecretKey,
  envString,
  serviceConfig,
} from "@phoenix/runtime/config";
import { databaseConfig } from "@phoenix/runtime/db";
import { federationRouterConfig } from "@phoenix/runtime/federation";
import { z } from "zod";

const DAY = 24 * 3600 * 1000;
/** The defaults of the bus variables: a deployment's names. */
const BUS = busTopology();
const SUBJECT = {
  pattern: /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/,
  patternHint: "must be a concrete NATS subject",
};
const NAME = { pattern: /^[A-Za-z0-9_-]{1,64}$/, patternHint: "must be letters, digits, _ and -" };

/** The DS's environment (see docs/delivery-service.md). */
export const deliveryConfigSchema = serviceConfig({
  serviceName: "delivery",
  grpcPort: 50052,
  metricsPort: 9466,
})
  .extend({
    /** The homeserver's domain: group ids are uuid@DS_DOMAIN. */
    DS_DOMAIN: envDomain(),
    /**
     * Required: 32-byte key (hex or base64, from a secret) that keys the markers of seen request
     * ids (replay protection), so a database snapshot cannot test them against guessed requests.
     * `_PREVIOUS`: the key being rotated away from (requests seen under it stay refused).
     */
    DS_REPLAY_MARKER_KEY: envSecretKey(),
    DS_REPLAY_MARKER_KEY_PREVIOUS: envSecretKey({ optional: true }),
    /** A client without a commit for this long is proposed for removal (default 90 days). */
    DS_CLIENT_INACTIVITY: envDuration({ default: 90 * DAY, min: 60_000 }),
    /** A group without a commit for this long is deleted (default 365 days; month granularity). */
    DS_GROUP_INACTIVITY: envDuration({ default: 365 * DAY, min: 60_000 }),
    /** How long a RequestGroupId reservation lives (default 1 hour). */
    DS_RESERVATION_TTL: envDuration({ default: 3600_000, min: 1000 }),
    /** Padding buckets (bytes, ascending) of the encrypted group state; default powers of two 1 KiB … 4 MiB. */
    DS_PADDING_BUCKETS: envList({ default: [] }).pipe(
      z.array(
        z
          .string()
          .regex(/^[1-9]\d*$/, "must be positive byte counts")
          .transform(Number),
      ),
    ),
    /**
     * In-memory cache of decoded group state (src/domain/state-cache.ts; argument in
     * docs/security.md): at most this many groups (0: no cache), this many bytes of encoded
     * state, each forgotten after this long without a request.
     */
    DS_STATE_CACHE_ENTRIES: envInt({ default: 256, min: 0, max: 1_000_000 }),
    DS_STATE_CACHE_BYTES: envBytes({ default: 64 * 1024 * 1024, min: 0 }),
    DS_STATE_CACHE_IDLE: envDuration({ default: 60_000, min: 0, max: 3_600_000 }),
    /**
     * Queue-deleted reports a group keeps until its next write folds them in (default 128); more
     * are dropped (the QS reports a missing queue again with every fan-out that reaches it).
     */
    DS_MAX_QUEUE_REPORTS: envInt({ default: 128, min: 1, max: 100_000 }),
    /** A queue-deleted report not folded in within this time is dropped (default 7 days; day granularity). */
    DS_QUEUE_REPORT_TTL: envDuration({ default: 7 * DAY, min: 60_000 }),
    /**
     * RequestGroupId calls per caller per minute (0: off), kept in the DS database so the limit
     * holds across replicas. The caller is the peer address, or for a peer listed in
     * DS_TRUSTED_PROXIES the client address it forwards in `x-forwarded-for`.
     */
    DS_CALLER_RATE_GROUP_ID_PER_MINUTE: envInt({ default: 30, min: 0, max: 1_000_000 }),
    /** Peers (IP addresses or CIDR blocks: the edge and federation gateways) whose `x-forwarded-for` names the real caller. */
    DS_TRUSTED_PROXIES: envAddressList({ default: [] }),
    /** How often inactive groups and lapsed reservations are swept (default 1 hour; 0 = never). */
    DS_SWEEP_INTERVAL: envDuration({ default: 3600_000, min: 0 }),
    /** Fan-out subject and the JetStream stream the DS creates for it (the QS consumes it). */
    DS_FANOUT_SUBJECT: envString({ default: BUS.subjects.fanOut, ...SUBJECT }),
    DS_FANOUT_STREAM: envString({ default: BUS.streams.fanOut, ...NAME }),
    /** Queue-deleted reports from the QS: subject, stream and the DS's durable consumer. */
    DS_QUEUE_DELETED_SUBJECT: envString({ default: BUS.subjects.queueDeleted, ...SUBJECT }),
    DS_QUEUE_DELETED_STREAM: envString({ default: BUS.streams.queueDeleted, ...NAME }),
    DS_QUEUE_DELETED_CONSUMER: envString({ default: BUS.durables.deliveryQueueDeleted, ...NAME }),
    /** How often the outbox relay looks for unpublished fan-outs when nobody pokes it (default 1 s). */
    DS_RELAY_POLL_INTERVAL: envDuration({ default: 1000, min: 10 }),
    /**
     * Pause before the outbox relay starts after boot (default 0). Committed fan-outs wait in the
     * outbox meanwhile; the crash-safety test uses it to kill the process before they go out.
     */
    DS_RELAY_START_DELAY: envDuration({ default: 0, min: 0 }),
  })
  .extend(databaseConfig.shape)
  .extend(busConfig.shape)
  .extend(federationRouterConfig.shape);

export type DeliveryConfig = z.output<typeof deliveryConfigSchema>;

/** Default padding buckets: 1 KiB … 4 MiB in powers of two. */
export const DEFAULT_STATE_BUCKETS: readonly number[] = Array.from({ length: 13 }, (_, i) => 1024 * 2 ** i);

/** The configured padding buckets (empty DS_PADDING_BUCKETS: the defaults), ascending. */
export function paddingBuckets(config: Pick<DeliveryConfig, "DS_PADDING_BUCKETS">): number[] {
  if (config.DS_PADDING_BUCKETS.length === 0) return [...DEFAULT_STATE_BUCKETS];
  return [...config.DS_PADDING_BUCKETS].sort((a, b) => a - b);
}
