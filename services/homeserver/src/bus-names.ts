import type { QsStreams } from "@phoenix/queue";

/** Bus subjects and stream names of one homeserver, and the service variables that set them. */
export interface BusNames {
  /** `""` (the deployment defaults) or `<namespace>.`. */
  subjectPrefix: string;
  /**
   * The QS's stream names, handed to `setupQueue`; empty without a namespace, so the QS's own
   * `QS_*_STREAM` variables decide.
   */
  streams: Partial<QsStreams>;
  deliveryEnv: Record<string, string>;
  federationEnv: Record<string, string>;
}

/**
 * The names of a homeserver's bus traffic. Without a namespace: the deployment defaults, and the
 * services' own variables (`DS_FANOUT_STREAM`, …) still apply. With one: every subject starts
 * with `<namespace>.` and every stream name ends in `_<namespace>`, so several homeservers (or
 * test runs) share one NATS without seeing each other's messages.
 */
export function busNames(namespace: string | undefined): BusNames {
  if (namespace === undefined) {
    return { subjectPrefix: "", streams: {}, deliveryEnv: {}, federationEnv: {} };
  }
  const prefix = `${namespace}.`;
  const streams = {
    fanOut: `PHOENIX_FANOUT_${namespace}`,
    queueDeleted: `PHOENIX_QUEUE_DELETED_${namespace}`,
    federation: `PHOENIX_FEDERATION_OUTBOUND_${namespace}`,
  };
  return {
    subjectPrefix: prefix,
    streams,
    deliveryEnv: {
      DS_FANOUT_SUBJECT: `${prefix}phoenix.fanout`,
      DS_FANOUT_STREAM: streams.fanOut,
      DS_QUEUE_DELETED_SUBJECT: `${prefix}phoenix.queue_deleted`,
      DS_QUEUE_DELETED_STREAM: streams.queueDeleted,
    },
    federationEnv: {
      FEDERATION_SUBJECT_PREFIX: prefix,
      FEDERATION_FANOUT_STREAM: streams.fanOut,
      FEDERATION_QUEUE_DELETED_STREAM: streams.queueDeleted,
      FEDERATION_OUTBOUND_STREAM: streams.federation,
    },
  };
}
