import { sha256, toHex, utf8 } from "@phoenix/crypto";
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

/** Subjects of a homeserver's bus under one subject prefix (`""` in deployments). */
export interface BusSubjects {
  /** `<prefix>phoenix.fanout`: FanOut, DS and gateway → QS (stored). */
  fanOut: string;
  /** `<prefix>phoenix.queue_deleted`: QueueDeleted, QS and gateway → DS (stored). */
  queueDeleted: string;
  /** `<prefix>phoenix.federation.outbound.`: the outbound subject of a peer is this plus its token. */
  federationOutboundRoot: string;
  /** `<prefix>phoenix.federation.outbound.>`: what the outbound federation stream captures. */
  federationOutboundPattern: string;
  /** `<prefix>phoenix.queue_activity.`: core wake-ups of Listen streams between QS replicas (plus hex client id). */
  queueActivityRoot: string;
  /**
   * `phoenix.connection_queue_activity.`: core wake-ups between AS replicas (plus hex queue id).
   * Never prefixed: the AS takes no subject prefix, and the NATS permissions grant it as is.
   */
  connectionQueueActivityRoot: string;
}

/**
 * Every name of a homeserver's bus: streams, subjects and durables. The environment variables
 * of the services (`DS_FANOUT_SUBJECT`, `QS_FANOUT_STREAM`, `FEDERATION_SUBJECT_PREFIX`, …)
 * override single names; their defaults are {@link busTopology}().
 */
export interface BusTopology {
  /** `""` in deployments, `<namespace>.` for a namespaced homeserver. */
  subjectPrefix: string;
  streams: {
    /** Captures `subjects.fanOut` (`PHOENIX_FANOUT`). */
    fanOut: string;
    /** Captures `subjects.queueDeleted` (`PHOENIX_QUEUE_DELETED`). */
    queueDeleted: string;
    /** Captures `subjects.federationOutboundPattern` (`PHOENIX_FEDERATION_OUTBOUND`). */
    federation: string;
  };
  subjects: BusSubjects;
  durables: {
    /** The QS's fan-out durable, shared by its replicas (`queue-fanout`). */
    queueFanOut: string;
    /** The DS's queue-deleted durable (`delivery-queue-deleted`). */
    deliveryQueueDeleted: string;
    /** The gateway's scout over the outbound stream ({@link OUTBOUND_SCOUT_DURABLE}). */
    outboundScout: string;
    /** The gateway's lanes are `<lanePrefix>-out-<peer>` ({@link outboundLaneDurable}). */
    lanePrefix: string;
  };
}

/** The bus subjects under `subjectPrefix` (`""` or dot-terminated tokens, e.g. `run42.`). */
export function busSubjects(subjectPrefix = ""): BusSubjects {
  return {
    fanOut: `${subjectPrefix}phoenix.fanout`,
    queueDeleted: `${subjectPrefix}phoenix.queue_deleted`,
    federationOutboundRoot: `${subjectPrefix}phoenix.federation.outbound.`,
    federationOutboundPattern: `${subjectPrefix}phoenix.federation.outbound.>`,
    queueActivityRoot: `${subjectPrefix}phoenix.queue_activity.`,
    connectionQueueActivityRoot: "phoenix.connection_queue_activity.",
  };
}

/**
 * The names of a homeserver's bus. Without a namespace: the deployment defaults. With one, every
 * subject but the AS's starts with `<namespace>.` and every stream name ends in `_<namespace>`,
 * so several homeservers (or test runs) share one NATS without seeing each other's messages;
 * durables need no namespace, each lives in its stream.
 */
export function busTopology(namespace?: string): BusTopology {
  const suffix = namespace === undefined ? "" : `_${namespace}`;
  const subjectPrefix = namespace === undefined ? "" : `${namespace}.`;
  return {
    subjectPrefix,
    streams: {
      fanOut: `PHOENIX_FANOUT${suffix}`,
      queueDeleted: `PHOENIX_QUEUE_DELETED${suffix}`,
      federation: `PHOENIX_FEDERATION_OUTBOUND${suffix}`,
    },
    subjects: busSubjects(subjectPrefix),
    durables: {
      queueFanOut: "queue-fanout",
      deliveryQueueDeleted: "delivery-queue-deleted",
      outboundScout: OUTBOUND_SCOUT_DURABLE,
      lanePrefix: "fedgw",
    },
  };
}

/**
 * A peer domain's token in its outbound subject (events.proto): "." replaced by "_". Domains
 * never contain "_", so the mapping is reversible.
 */
export function peerSubjectToken(domain: string): string {
  return domain.replaceAll(".", "_");
}

/** The inverse of {@link peerSubjectToken}. */
export function domainOfPeerSubjectToken(token: string): string {
  return token.replaceAll("_", ".");
}

/**
 * The durable of the gateway's lane to one peer over the outbound stream, `<lanePrefix>-out-<peer
 * token>` (NATS names: letters, digits, "_" and "-"); a token longer than 48 characters is
 * replaced by a hash of the domain, so the name stays within NATS limits.
 */
export function outboundLaneDurable(lanePrefix: string, peerDomain: string): string {
  const token = peerSubjectToken(peerDomain).replaceAll(/[^A-Za-z0-9_-]/g, "-");
  return token.length <= 48
    ? `${lanePrefix}-out-${token}`
    : `${lanePrefix}-out-${toHex(sha256(utf8(peerDomain))).slice(0, 32)}`;
}

/** `<root><peer token>`: the outbound federation subject of one peer domain. */
export function federationOutboundSubject(subjects: BusSubjects, peerDomain: string): string {
  return `${subjects.federationOutboundRoot}${peerSubjectToken(peerDomain)}`;
}

/** FanOut DS → QS (and inbound federation → QS): one consumer, the QS. */
export function fanOutStream(name: string, subject: string, durable?: string): StreamConfig {
  return {
    name,
    subjects: [subject],
    retention: "workqueue",
    // Declared by its consumer (the QS), so its lag is readable before the first consume().
    ...(durable !== undefined ? { durables: [{ name: durable }] } : {}),
  };
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
