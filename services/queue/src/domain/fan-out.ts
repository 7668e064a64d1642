import { concat, sha256, toHex, utf8 } from "@phoenix/crypto";
import { common, events } from "@phoenix/proto";
import { ID_LENGTH, LIMITS } from "./limits.js";
import { HashPurpose, type StorageKeys } from "./storage-keys.js";

/** A FanOut that is not worth retrying (it will never decode or validate). */
export class MalformedFanOutError extends Error {
  override readonly name = "MalformedFanOutError";
}

/** Decodes and checks a FanOut from the bus. */
export function decodeFanOut(data: Uint8Array): events.FanOut {
  let fanOut: events.FanOut;
  try {
    fanOut = events.FanOut.decode(data);
  } catch {
    throw new MalformedFanOutError("FanOut does not decode");
  }
  if (fanOut.fanOutId.length !== ID_LENGTH) throw new MalformedFanOutError("fan_out_id must be 16 bytes");
  const group = fanOut.groupId;
  if (group === undefined || group.uuid.length !== ID_LENGTH || group.domain.length === 0) {
    throw new MalformedFanOutError("group_id is missing or malformed");
  }
  if (fanOut.payload.length > LIMITS.queuePayload) throw new MalformedFanOutError("payload is too large");
  return fanOut;
}

/** The first 16 bytes of SHA-256 over the parts. */
function id16(...parts: Uint8Array[]): Uint8Array {
  return sha256(concat(...parts)).slice(0, 16);
}

/** Envelope id of a source event for one destination (see events.proto FederationEnvelope). */
export function envelopeId(sourceEventId: Uint8Array, destination: string): Uint8Array {
  return id16(sourceEventId, utf8(destination));
}

/** QueueDeleted event id: deterministic for (fan_out_id, recipient), so redeliveries repeat it. */
export function queueDeletedEventId(fanOutId: Uint8Array, recipient: common.QsReference): Uint8Array {
  return id16(fanOutId, common.QsReference.encode(recipient).finish());
}

/** Keyed hash standing for "this fan-out was handled" (the fan-out id itself is DS-known). */
export function fanOutMarker(storage: StorageKeys, fanOutId: Uint8Array): Uint8Array {
  return storage.hash(HashPurpose.FanOutMarker, fanOutId);
}

/** Blocklist entry of a group for one queue: unlinkable across queues and unreadable without the key. */
export function blocklistEntry(
  storage: StorageKeys,
  clientId: Uint8Array,
  group: common.QualifiedGroupId,
): Uint8Array {
  return storage.hash(HashPurpose.BlocklistEntry, clientId, group.uuid, utf8(group.domain));
}

/** A message for the outbox: subject, payload and dedupe id. */
export interface OutboundEvent {
  subject: string;
  payload: Uint8Array;
  id: string;
}

/** The FederationEnvelopes forwarding a fan-out's remote recipients, one per destination domain. */
export function forwardRemote(
  fanOut: events.FanOut,
  remote: ReadonlyMap<string, common.QsReference[]>,
  source: string,
  subjectOf: (peer: string) => string,
): OutboundEvent[] {
  const out: OutboundEvent[] = [];
  for (const [destination, recipients] of remote) {
    const id = envelopeId(fanOut.fanOutId, destination);
    const envelope: events.FederationEnvelope = {
      envelopeId: id,
      sourceDomain: source,
      destinationDomain: destination,
      content: { $case: "fanOut", value: { ...fanOut, recipients } },
    };
    out.push({
      subject: subjectOf(destination),
      payload: events.FederationEnvelope.encode(envelope).finish(),
      id: toHex(id),
    });
  }
  return out;
}

/**
 * The report that a recipient's queue does not exist: to the local DS when the group is ours,
 * else in a FederationEnvelope to the group's domain.
 */
export function reportDeleted(
  fanOut: events.FanOut,
  recipient: common.QsReference,
  source: string,
  reportedAt: Date,
  subjects: { queueDeleted: string; federationOutbound(peer: string): string },
): OutboundEvent {
  const eventId = queueDeletedEventId(fanOut.fanOutId, recipient);
  const report: events.QueueDeleted = { eventId, groupId: fanOut.groupId, recipient, reportedAt };
  const groupDomain = fanOut.groupId?.domain ?? source;
  if (groupDomain === source) {
    return {
      subject: subjects.queueDeleted,
      payload: events.QueueDeleted.encode(report).finish(),
      id: toHex(eventId),
    };
  }
  const id = envelopeId(eventId, groupDomain);
  const envelope: events.FederationEnvelope = {
    envelopeId: id,
    sourceDomain: source,
    destinationDomain: groupDomain,
    content: { $case: "queueDeleted", value: report },
  };
  return {
    subject: subjects.federationOutbound(groupDomain),
    payload: events.FederationEnvelope.encode(envelope).finish(),
    id: toHex(id),
  };
}
