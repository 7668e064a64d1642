import type { events } from "@phoenix/proto";
import { describe, expect, it } from "vitest";
import { checkInboundFanOut, checkInboundReport } from "./envelope.js";
import { ForeignRecipientReportError, MalformedFederationRequestError } from "./errors.js";

const id = new Uint8Array(16).fill(7);
const fanOutEnvelope = (recipientDomain = "b.test"): events.FederationEnvelope => ({
  envelopeId: id,
  sourceDomain: "a.test",
  destinationDomain: "b.test",
  content: {
    $case: "fanOut",
    value: {
      fanOutId: new Uint8Array(16),
      groupId: { uuid: new Uint8Array(16), domain: "a.test" },
      recipients: [{ domain: recipientDomain, sealedQueueConfig: new Uint8Array([1]) }],
      payload: new Uint8Array([2]),
      suppressNotifications: false,
    },
  },
});

const report = (groupDomain: string, recipientDomain = "a.test"): events.FederationEnvelope => ({
  envelopeId: id,
  sourceDomain: "a.test",
  destinationDomain: "b.test",
  content: {
    $case: "queueDeleted",
    value: {
      eventId: new Uint8Array(16).fill(1),
      groupId: { uuid: new Uint8Array(16), domain: groupDomain },
      recipient: { domain: recipientDomain, sealedQueueConfig: new Uint8Array([1]) },
      reportedAt: new Date(),
    },
  },
});

describe("inbound envelope checks", () => {
  it("accepts a fan-out for this domain from its signer, with the envelope id as dedupe id", () => {
    const checked = checkInboundFanOut(fanOutEnvelope(), "b.test", "a.test");
    expect(checked.dedupeId).toBe("07".repeat(16));
    expect(checked.fanOut.recipients).toHaveLength(1);
  });

  it("refuses the wrong destination, a source other than the signer and foreign recipients", () => {
    expect(() => checkInboundFanOut(fanOutEnvelope(), "c.test", "a.test")).toThrow(/addressed to b.test/);
    expect(() => checkInboundFanOut(fanOutEnvelope(), "b.test", "c.test")).toThrow(
      /differs from the signing/,
    );
    expect(() => checkInboundFanOut(fanOutEnvelope("c.test"), "b.test", "a.test")).toThrow(/another domain/);
    expect(() => checkInboundReport(fanOutEnvelope(), "b.test", "a.test")).toThrow(
      MalformedFederationRequestError,
    );
  });

  it("accepts a queue-deleted report only for our groups", () => {
    expect(checkInboundReport(report("b.test"), "b.test", "a.test").dedupeId).toBe("01".repeat(16));
    expect(() => checkInboundReport(report("a.test"), "b.test", "a.test")).toThrow(/another domain/);
  });

  it("refuses a report naming a recipient of a domain other than the signer's", () => {
    // a.test signs for a recipient on c.test: only c.test's QS could know that queue is gone.
    expect(() => checkInboundReport(report("b.test", "c.test"), "b.test", "a.test")).toThrow(
      ForeignRecipientReportError,
    );
    expect(() => checkInboundReport(report("b.test", "c.test"), "b.test", "a.test")).toThrow(
      /signed by a\.test names a recipient of c\.test/,
    );
    // The recipient of the group's own domain is not the signer's either.
    expect(() => checkInboundReport(report("b.test", "b.test"), "b.test", "a.test")).toThrow(
      ForeignRecipientReportError,
    );
  });
});
