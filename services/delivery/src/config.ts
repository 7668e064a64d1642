import { busConfig } from "@phoenix/runtime/bus";
import { envDuration, envList, envString, serviceConfig } from "@phoenix/runtime/config";
import { databaseConfig } from "@phoenix/runtime/db";
import { z } from "zod";

const DAY = 24 * 3600 * 1000;

/** The DS's environment (see docs/delivery-service.md). */
export const deliveryConfigSchema = serviceConfig({
  serviceName: "delivery",
  grpcPort: 50052,
  metricsPort: 9466,
})
  .extend({
    /** The homeserver's domain: group ids are uuid@DS_DOMAIN. */
    DS_DOMAIN: envString({ pattern: /^[a-z0-9.-]{1,253}$/, patternHint: "must be a lower-case domain name" }),
    /** A client without a commit for this long is proposed for removal (default 90 days). */
    DS_CLIENT_INACTIVITY: envDuration({ default: 90 * DAY, min: 60_000 }),
    /** A group without a commit for this long is deleted (default 365 days; month granularity). */
    DS_GROUP_INACTIVITY: envDuration({ default: 365 * DAY, min: 60_000 }),
    /** How long a RequestGroupId reservation lives (default 1 hour). */
    DS_RESERVATION_TTL: envDuration({ default: 3600_000, min: 1000 }),
    /** Padding buckets (bytes, ascending) of the encrypted group state; default powers of two 1 KiB … 4 MiB. */
    DS_PADDING_BUCKETS: envList({ default: [] }),
    /** How often inactive groups and lapsed reservations are swept (default 1 hour). */
    DS_SWEEP_INTERVAL: envDuration({ default: 3600_000, min: 1000 }),
  })
  .extend(databaseConfig.shape)
  .extend(busConfig.shape);

export type DeliveryConfig = z.output<typeof deliveryConfigSchema>;

/** Default padding buckets: 1 KiB … 4 MiB in powers of two. */
export const DEFAULT_STATE_BUCKETS: readonly number[] = Array.from({ length: 13 }, (_, i) => 1024 * 2 ** i);

/** Parses DS_PADDING_BUCKETS (empty: the defaults). */
export function paddingBuckets(config: Pick<DeliveryConfig, "DS_PADDING_BUCKETS">): number[] {
  if (config.DS_PADDING_BUCKETS.length === 0) return [...DEFAULT_STATE_BUCKETS];
  return config.DS_PADDING_BUCKETS.map((b) => z.coerce.number().int().positive().parse(b));
}
