import {
  checkTimestampWindow,
  type EnvelopeWindow,
  FutureTimestampError,
  StaleTimestampError,
} from "@phoenix/crypto";
import { common, type MessageDecoder } from "@phoenix/proto";
import {
  malformedField as malformed,
  unauthenticatedFor as unauthenticated,
} from "../errors/phoenix-detail.js";

const { ErrorReason } = common;

/** How old, and how far ahead, a signed request's timestamp may be. */
export type RequestWindow = EnvelopeWindow;

/** Length of a request id (random, chosen by the client). */
export const REQUEST_ID_LENGTH = 16;
/** Length of an Ed25519 signature. */
const SIGNATURE_LENGTH = 64;

/** What the RPC expects of a request header. */
export interface ExpectedHeader {
  /** The RPC's signature label: a signature made for one RPC never authorises another. */
  label: string;
  /** The service clock, ms since the epoch. */
  now: number;
  window: RequestWindow;
}

/** A header that passed {@link checkRequestHeader}. */
export interface CheckedRequestHeader {
  header: common.RequestHeader;
  requestId: Uint8Array;
  timestamp: Date;
}

/** A signed request whose tbs decoded and whose header passed the checks (signature not yet verified). */
export interface OpenedSignedRequest<T> {
  tbs: T;
  header: common.RequestHeader;
  signed: common.Signed;
}

/**
 * Checks the header of a signed request before its signature is verified: the label must be the
 * RPC's own (UNAUTHENTICATED / WRONG_LABEL), the request id 16 bytes and the timestamp present
 * (INVALID_ARGUMENT / MALFORMED) and inside the replay window (UNAUTHENTICATED / STALE_TIMESTAMP,
 * libs/crypto's `checkTimestampWindow`). The sender is the service's to check.
 */
export function checkRequestHeader(
  header: common.RequestHeader | undefined,
  expected: ExpectedHeader,
): CheckedRequestHeader {
  if (header === undefined) throw malformed("tbs.header", "missing");
  if (header.label !== expected.label) {
    throw unauthenticated(
      ErrorReason.ERROR_REASON_WRONG_LABEL,
      `header label "${header.label.slice(0, 100)}" is not this RPC's label "${expected.label}"`,
    );
  }
  if (header.requestId.length !== REQUEST_ID_LENGTH) {
    throw malformed("tbs.header.request_id", `must be ${REQUEST_ID_LENGTH} bytes`);
  }
  const timestamp = header.timestamp;
  if (timestamp === undefined || Number.isNaN(timestamp.getTime()))
    throw malformed("tbs.header.timestamp", "missing");
  try {
    checkTimestampWindow(timestamp.getTime(), expected.now, expected.window, "request");
  } catch (error) {
    if (error instanceof StaleTimestampError || error instanceof FutureTimestampError) {
      throw unauthenticated(
        ErrorReason.ERROR_REASON_STALE_TIMESTAMP,
        `tbs.header.timestamp: ${error.message}, outside the replay window`,
      );
    }
    throw error;
  }
  return { header, requestId: header.requestId, timestamp };
}

/**
 * Decodes the `…Tbs` of a signed request (`field` names it in refusals, default `signed`) and
 * checks its header with {@link checkRequestHeader}. The signature is verified afterwards, once
 * the sender's key is known.
 */
export function openSignedRequest<T extends { header: common.RequestHeader | undefined }>(
  signed: common.Signed | undefined,
  type: MessageDecoder<T>,
  expected: ExpectedHeader & { field?: string },
): OpenedSignedRequest<T> {
  const field = expected.field ?? "signed";
  if (signed === undefined) throw malformed(field, "missing");
  if (signed.signature.length !== SIGNATURE_LENGTH) {
    throw malformed(`${field}.signature`, `must be ${SIGNATURE_LENGTH} bytes`);
  }
  let tbs: T;
  try {
    tbs = type.decode(signed.tbs);
  } catch {
    throw malformed(`${field}.tbs`, "does not decode");
  }
  const { header } = checkRequestHeader(tbs.header, expected);
  return { tbs, header, signed };
}
