import { common } from "@phoenix/proto";
import type { RequestWindow as RuntimeRequestWindow } from "@phoenix/runtime/signed-request";
import { unauthenticated } from "./errors.js";

const Reason = common.ErrorReason;

/** The replay window of signed requests (how old / how far ahead a timestamp may be). */
export type RequestWindow = RuntimeRequestWindow;

/** Which sender a signed RPC expects in its header. */
export type SenderKind = "client" | "handleHash";

/** The header's sender must be of the kind the RPC expects (UNAUTHENTICATED / UNKNOWN_SENDER). */
export function checkSenderKind(header: common.RequestHeader, expected: SenderKind | "none"): void {
  const actual = header.sender?.$case ?? "none";
  if (actual !== expected) {
    throw unauthenticated(
      `header sender must be ${expected === "none" ? "unset" : expected}, got ${actual}`,
      Reason.ERROR_REASON_UNKNOWN_SENDER,
    );
  }
}
