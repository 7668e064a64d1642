import { busSubjects, federationOutboundSubject } from "@phoenix/runtime/bus";

/**
 * Bus subjects of the QS (documented in proto/phoenix/events/v1/events.proto), named by the bus
 * topology of `@phoenix/runtime/bus`. `prefix` is empty in deployments; tests put a unique
 * prefix in front so parallel runs never share a stream.
 */
export interface QsSubjects {
  /** `phoenix.fanout`: FanOut, DS → QS (durable). */
  fanOut: string;
  /** `phoenix.queue_deleted`: QueueDeleted, QS → DS (durable). */
  queueDeleted: string;
  /** `phoenix.federation.outbound.>`: the pattern of the outbound federation stream. */
  federationPattern: string;
  /** `phoenix.federation.outbound.<peer>`, `.` in the domain replaced by `_`. */
  federationOutbound(peer: string): string;
  /** `phoenix.queue_activity.<hex client id>`: core wake-up of Listen streams. */
  queueActivity(clientIdHex: string): string;
}

/** The QS subjects under `prefix` ("" in deployments). */
export function qsSubjects(prefix = ""): QsSubjects {
  const subjects = busSubjects(prefix);
  return {
    fanOut: subjects.fanOut,
    queueDeleted: subjects.queueDeleted,
    federationPattern: subjects.federationOutboundPattern,
    federationOutbound: (peer) => federationOutboundSubject(subjects, peer),
    queueActivity: (id) => `${subjects.queueActivityRoot}${id}`,
  };
}
