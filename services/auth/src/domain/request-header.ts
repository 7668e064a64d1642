import { common } from "@phoenix/proto";
import { malformed, unauthenticated } from "./errors.js";

const Reason = common.ErrorReason;

/** The replay window of signed requests. */
export interface RequestWindow {
  /** How old a request timestamp may be. */
  maxAgeMs: number;
  /** How far ahead of the server clock a request timestamp may be. */
  maxFutureSkewMs: number;
}

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
  const age = expected.now.getTime() - timestamp.getTime();
  if (age > expected.window.maxAgeMs) {
    throw unauthenticated(
      `request signed ${Math.round(age / 1000)} s ago, outside the replay window`,
      Reason.ERROR_REASON_STALE_TIMESTAMP,
    );
  }
  if (-age > expected.window.maxFutureSkewMs) {
    throw unauthenticated(
      `request timestamp ${Math.round(-age / 1000)} s in the future`,
      Reason.ERROR_REASON_STALE_TIMESTAMP,
    );
  }
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
