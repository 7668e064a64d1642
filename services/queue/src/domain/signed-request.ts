import { common } from "@phoenix/proto";
import type { UnauthenticatedError } from "@phoenix/runtime/errors";
import { malformed, unauthenticated } from "./errors.js";

const { ErrorReason } = common;

/** The 16-byte QS id a header names as sender, of the kind the RPC expects. */
export function senderId(header: common.RequestHeader, kind: "qsUserId" | "qsClientId"): Uint8Array {
  const sender = header.sender;
  if (sender?.$case !== kind) {
    const expected = kind === "qsUserId" ? "qs_user_id" : "qs_client_id";
    throw unauthenticated(ErrorReason.ERROR_REASON_UNKNOWN_SENDER, `header sender must be a ${expected}`);
  }
  if (sender.value.length !== 16)
    throw malformed(`tbs.header.${kind === "qsUserId" ? "qs_user_id" : "qs_client_id"}`, "must be 16 bytes");
  return sender.value;
}

/** UNAUTHENTICATED / UNKNOWN_SENDER: the header names a record this QS does not hold. */
export function unknownSender(who: string): UnauthenticatedError {
  return unauthenticated(ErrorReason.ERROR_REASON_UNKNOWN_SENDER, `${who} is unknown`);
}
