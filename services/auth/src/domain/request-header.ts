import { common } from "@phoenix/proto";
import {
  checkRequestHeader,
  type RequestWindow as RuntimeRequestWindow,
} from "@phoenix/runtime/signed-request";
import { unauthenticated } from "./errors.js";

const Reason = common.ErrorReason;

/** The replay window of signed requests (how old / how far ahead a timestamp may be). */
export type RequestWindow = RuntimeRequestWindow;

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
  // Label, request id and timestamp window: the runtime's check, shared by every service.
  const checked = checkRequestHeader(header, {
    label: expected.label,
    now: expected.now.getTime(),
    window: expected.window,
  });
  const actual = checked.header.sender?.$case ?? "none";
  if (actual !== expected.sender) {
    throw unauthenticated(
      `header sender must be ${expected.sender === "none" ? "unset" : expected.sender}, got ${actual}`,
      Reason.ERROR_REASON_UNKNOWN_SENDER,
    );
  }
  return { requestId: checked.requestId, timestamp: checked.timestamp, sender: checked.header.sender };
}
