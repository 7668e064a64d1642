import { checkTimestampWindow, type EnvelopeWindow } from "@phoenix/crypto";
import { common } from "@phoenix/proto";
import { checking, malformed, unauthenticated } from "./errors.js";

const Reason = common.ErrorReason;

/** The replay window of signed requests (how old / how far ahead a timestamp may be). */
export type RequestWindow = EnvelopeWindow;

/** Which sender a signed RPC expects in its header. */
export type SenderKind = "client" | "handleHash";

/** The checked header of a signed request. */
export interface CheckedHeader {
  requestId: Uint8Array;
  timestamp: Date;
  sender: common.RequestHeader["sender"];
}

/**
 * Checks the header of a signed request before its signature is verified: the label must be the
 * RPC's own (a signature for one RPC never authorises another), the timestamp must lie inside the
 * replay window, the request id must be 16 bytes and the sender of the expected kind.
 */
export function checkHeader(
  header: common.RequestHeader | undefined,
  expected: { label: string; sender: SenderKind | "none"; now: Date; window: RequestWindow },
): CheckedHeader {
  if (!header) throw malformed("tbs.header", "missing");
  if (header.label !== expected.label) {
    throw unauthenticated(
      `header label "${header.label.slice(0, 100)}" is not this RPC's label "${expected.label}"`,
      Reason.ERROR_REASON_WRONG_LABEL,
    );
  }
  if (header.requestId.length !== 16) throw malformed("tbs.header.request_id", "must be 16 bytes");
  const timestamp = header.timestamp;
  if (!timestamp || Number.isNaN(timestamp.getTime())) throw malformed("tbs.header.timestamp", "missing");
  // libs/crypto's window check (the one envelopes use); Stale/FutureTimestampError become
  // UNAUTHENTICATED with reason STALE_TIMESTAMP.
  checking("tbs.header.timestamp", () =>
    checkTimestampWindow(timestamp.getTime(), expected.now.getTime(), expected.window, "request"),
  );
  const actual = header.sender?.$case ?? "none";
  if (actual !== expected.sender) {
    throw unauthenticated(
      `header sender must be ${expected.sender === "none" ? "unset" : expected.sender}, got ${actual}`,
      Reason.ERROR_REASON_UNKNOWN_SENDER,
    );
  }
  return { requestId: header.requestId, timestamp, sender: header.sender };
}

/** The start of the month of `date` (UTC): activity times are kept at month precision. */
export function monthOf(date: Date): Date {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1));
}
