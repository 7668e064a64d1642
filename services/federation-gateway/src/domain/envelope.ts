import { toHex } from "@phoenix/crypto";
import type { events } from "@phoenix/proto";
import { ForeignRecipientReportError, MalformedFederationRequestError } from "./errors.js";

/** A verified inbound fan-out, ready for this domain's bus. */
export interface InboundFanOut {
  /** Hex envelope id: the bus dedupe id. */
  dedupeId: string;
  fanOut: events.FanOut;
}

/** A verified inbound queue-deleted report, ready for this domain's bus. */
export interface InboundReport {
  /** Hex event id: the bus dedupe id (events.proto). */
  dedupeId: string;
  report: events.QueueDeleted;
}

type Content = NonNullable<events.FederationEnvelope["content"]>;

function checkAddressing(
  envelope: events.FederationEnvelope | undefined,
  expected: Content["$case"],
  ownDomain: string,
  signer: string,
): Content {
  if (envelope === undefined) throw new MalformedFederationRequestError("envelope missing");
  if (envelope.envelopeId.length !== 16)
    throw new MalformedFederationRequestError("envelope_id must be 16 bytes");
  if (envelope.destinationDomain !== ownDomain) {
    throw new MalformedFederationRequestError(
      `envelope is addressed to ${envelope.destinationDomain}, not ${ownDomain}`,
    );
  }
  if (envelope.sourceDomain !== signer) {
    throw new MalformedFederationRequestError("envelope source_domain differs from the signing domain");
  }
  const content = envelope.content;
  if (content?.$case !== expected) {
    throw new MalformedFederationRequestError(
      expected === "fanOut"
        ? "envelope content is not a fan-out"
        : "envelope content is not a queue-deleted report",
    );
  }
  return content;
}

/**
 * Checks a verified DeliverFanOut envelope: addressed to us, sent by the signer, a fan-out whose
 * recipients are all ours.
 */
export function checkInboundFanOut(
  envelope: events.FederationEnvelope | undefined,
  ownDomain: string,
  signer: string,
): InboundFanOut {
  const content = checkAddressing(envelope, "fanOut", ownDomain, signer);
  if (content.$case !== "fanOut")
    throw new MalformedFederationRequestError("envelope content is not a fan-out");
  const fanOut = content.value;
  if (fanOut.fanOutId.length !== 16) throw new MalformedFederationRequestError("fan_out_id must be 16 bytes");
  if (fanOut.recipients.length === 0) throw new MalformedFederationRequestError("fan-out has no recipients");
  if (fanOut.recipients.some((r) => r.domain !== ownDomain)) {
    throw new MalformedFederationRequestError("fan-out has a recipient of another domain");
  }
  return { dedupeId: toHex(envelope?.envelopeId ?? new Uint8Array()), fanOut };
}

/**
 * Checks a verified ReportQueueDeleted envelope: addressed to us, sent by the signer, for one of
 * our groups, and naming a recipient of the signer's own domain. The recipient's `domain` is the
 * plaintext half of its queue reference and the DS matches a report to a member on the whole
 * reference (domain and sealed queue config), so a report relabelled with the signer's domain
 * names none of another domain's members.
 */
export function checkInboundReport(
  envelope: events.FederationEnvelope | undefined,
  ownDomain: string,
  signer: string,
): InboundReport {
  const content = checkAddressing(envelope, "queueDeleted", ownDomain, signer);
  if (content.$case !== "queueDeleted") {
    throw new MalformedFederationRequestError("envelope content is not a queue-deleted report");
  }
  const report = content.value;
  if (report.eventId.length !== 16) throw new MalformedFederationRequestError("event_id must be 16 bytes");
  if (report.groupId?.domain !== ownDomain) {
    throw new MalformedFederationRequestError("queue-deleted report for a group of another domain");
  }
  if (report.recipient === undefined)
    throw new MalformedFederationRequestError("queue-deleted report names no recipient");
  if (report.recipient.domain !== signer)
    throw new ForeignRecipientReportError(signer, report.recipient.domain);
  return { dedupeId: toHex(report.eventId), report };
}
