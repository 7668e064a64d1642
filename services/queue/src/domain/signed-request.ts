import { VerifyingKey } from "@phoenix/crypto";
import { common } from "@phoenix/proto";
import type { OpenedSignedRequest, RequestWindow } from "@phoenix/runtime/signed-request";
import { malformed, unauthenticated } from "./errors.js";

const { ErrorReason } = common;

/** A signed request whose tbs decoded and whose header passed the runtime's checks. */
export type OpenedRequest<T> = OpenedSignedRequest<T>;

/** Accepted age and future skew of request timestamps. */
export type ReplayWindow = RequestWindow;

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

/**
 * Verifies the signature with the sender's key (`undefined`: unknown sender). The request id is
 * claimed afterwards, inside the request's transaction (api/replay.ts).
 */
export function verifySigned(opened: OpenedRequest<unknown>, key: Uint8Array | undefined, who: string): void {
  if (key === undefined) throw unauthenticated(ErrorReason.ERROR_REASON_UNKNOWN_SENDER, `${who} is unknown`);
  let verifying: VerifyingKey;
  try {
    verifying = VerifyingKey.fromBytes(key);
  } catch {
    throw unauthenticated(ErrorReason.ERROR_REASON_UNKNOWN_SENDER, `${who} has no valid Ed25519 key`);
  }
  if (!verifying.verify(opened.header.label, opened.signed.tbs, opened.signed.signature)) {
    throw unauthenticated(ErrorReason.ERROR_REASON_BAD_SIGNATURE, `signature of ${who} does not verify`);
  }
}
