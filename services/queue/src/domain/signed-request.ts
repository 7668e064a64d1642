import { VerifyingKey } from "@phoenix/crypto";
import { common, type MessageDecoder } from "@phoenix/proto";
import { malformed, unauthenticated } from "./errors.js";

const { ErrorReason } = common;

/** A signed request whose tbs decoded and whose header is well formed (signature not yet checked). */
export interface OpenedRequest<T> {
  tbs: T;
  header: common.RequestHeader;
  signed: common.Signed;
}

/** Accepted age and future skew of request timestamps. */
export interface ReplayWindow {
  maxAgeMs: number;
  maxFutureSkewMs: number;
}

/**
 * Decodes the `…Tbs` of a signed request and checks its header: the RPC's label, a 16-byte
 * request id and a timestamp inside the replay window. The signature is checked afterwards,
 * once the sender's key is known ({@link verifySigned}).
 */
export function openSigned<T extends { header: common.RequestHeader | undefined }>(
  signed: common.Signed | undefined,
  type: MessageDecoder<T>,
  label: string,
  now: number,
  window: ReplayWindow,
  field = "signed",
): OpenedRequest<T> {
  if (signed === undefined) throw malformed(field, "missing");
  if (signed.signature.length !== 64) throw malformed(`${field}.signature`, "must be 64 bytes");
  let tbs: T;
  try {
    tbs = type.decode(signed.tbs);
  } catch {
    throw malformed(`${field}.tbs`, "does not decode");
  }
  const header = tbs.header;
  if (header === undefined) throw malformed("tbs.header", "missing");
  if (header.label !== label) {
    throw unauthenticated(ErrorReason.ERROR_REASON_WRONG_LABEL, `header label must be "${label}"`);
  }
  if (header.requestId.length !== 16) throw malformed("tbs.header.request_id", "must be 16 bytes");
  const ts = header.timestamp?.getTime();
  if (ts === undefined || Number.isNaN(ts)) throw malformed("tbs.header.timestamp", "missing");
  if (ts < now - window.maxAgeMs || ts > now + window.maxFutureSkewMs) {
    throw unauthenticated(
      ErrorReason.ERROR_REASON_STALE_TIMESTAMP,
      "request timestamp is outside the replay window",
    );
  }
  return { tbs, header, signed };
}

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
