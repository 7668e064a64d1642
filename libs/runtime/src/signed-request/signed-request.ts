import type { EnvelopeWindow } from "@phoenix/crypto";
import type { common } from "@phoenix/proto";

/** How old, and how far ahead, a signed request's timestamp may be. */
export type RequestWindow = EnvelopeWindow;

/** Length of a request id (random, chosen by the client). */
export const REQUEST_ID_LENGTH = 16;
/** Length of an Ed25519 signature. */
export const SIGNATURE_LENGTH = 64;

/** What the RPC expects of a request header. */
export interface ExpectedHeader {
  /** The RPC's signature label: a signature made for one RPC never authorises another. */
  label: string;
  /** The service clock, ms since the epoch. */
  now: number;
  window: RequestWindow;
}

/** A header that passed `checkRequestHeader` (authenticator.ts). */
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
