import type { StreamConfig } from "./types.js";

/**
 * The bus layout of a homeserver: which service publishes and which durable consumes each
 * stream. Every service that touches a stream defines it through these functions, so all of them
 * agree on its retention; the NATS permissions (`nats-permissions.ts`) derive from the same table.
 *
 * | stream (default name)         | subjects                                | published by                                   | consumed by (durables)                                   | retention |
 * |-------------------------------|-----------------------------------------|------------------------------------------------|----------------------------------------------------------|-----------|
 * | `PHOENIX_FANOUT`              | `phoenix.fanout`                        | DS outbox relay; gateway (inbound DeliverFanOut) | QS `queue-fanout` only                                 | workqueue |
 * | `PHOENIX_QUEUE_DELETED`       | `phoenix.queue_deleted`                 | QS outbox relay; gateway (inbound ReportQueueDeleted) | DS `delivery-queue-deleted` only                    | workqueue |
 * | `PHOENIX_FEDERATION_OUTBOUND` | `phoenix.federation.outbound.<peer>`    | QS outbox relay                                | gateway scout `fedgw-scout` (all) + one lane per peer (its subject) | interest  |
 *
 * Core notifications (never stored): `phoenix.queue_activity.<client>` between QS replicas,
 * `phoenix.connection_queue_activity.<queue>` between AS replicas.
 *
 * Why these retentions: a work-queue stream deletes a message at its one durable's ack and keeps
 * it while no durable exists yet (a DS publishing before the QS ever ran loses nothing). The
 * outbound stream has overlapping durables (the scout sees every subject and starts the lane of
 * a new peer before acking), which a work queue refuses; on an interest stream a message leaves
 * once the scout and its peer's lane acked it. Interest retention drops a message no durable
 * matches, so the scout is declared with the stream: whoever creates the stream (QS or gateway)
 * creates the scout with it, and the scout's ack comes only after the lane exists.
 * Every stream also has the age/size backstop of the bus config (`BUS_MAX_AGE_MS`, …).
 */

/** The scout durable of the outbound federation stream (the gateway consumes it, the QS declares it). */
export const OUTBOUND_SCOUT_DURABLE = "fedgw-scout";

/** FanOut DS → QS (and inbound federation → QS): one consumer, the QS. */
export function fanOutStream(name: string, subject: string): StreamConfig {
  return { name, subjects: [subject], retention: "workqueue" };
}

/** QueueDeleted QS → DS (and inbound federation → DS): one consumer, the DS. */
export function queueDeletedStream(name: string, subject: string): StreamConfig {
  return { name, subjects: [subject], retention: "workqueue" };
}

/**
 * Outbound federation QS → gateway, `pattern` = `<prefix>phoenix.federation.outbound.>`: the
 * gateway's scout plus one lane per peer.
 */
export function federationOutboundStream(name: string, pattern: string): StreamConfig {
  return { name, subjects: [pattern], retention: "interest", durables: [{ name: OUTBOUND_SCOUT_DURABLE }] };
}
