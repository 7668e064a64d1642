// The signing envelope of server-to-server requests: a phoenix.common.v1.Signed whose tbs starts
// with a RequestHeader (sender = the sending domain, label = the RPC's full name), signed with
// the sending domain's federation key under libs/crypto's labelled signature. The label is
// distinct per RPC, so a signature made for one federation RPC (or any client RPC) never
// verifies for another.
import {
  checkTimestampWindow,
  DEFAULT_ENVELOPE_WINDOW,
  type EnvelopeWindow,
  isValidDomain,
  type SigningKey,
  type VerifyingKey,
} from "@phoenix/crypto";
import {
  type common,
  type MessageDecoder,
  type MessageEncoder,
  requestHeader,
  signTbs,
} from "@phoenix/proto";
import { REQUEST_ID_LENGTH } from "@phoenix/runtime/signed-request";
import { FederationAuthError, MalformedFederationRequestError } from "./errors.js";

type Signed = common.Signed;
type RequestHeader = common.RequestHeader;

/** A `…Tbs` message of a federation request. */
export type FederationTbs = { header: RequestHeader | undefined };

/** Signs `tbs` (built around a fresh header for `label` from `domain`) with the domain's key. */
export async function signFederationRequest<T extends FederationTbs>(
  type: MessageEncoder<T>,
  label: string,
  domain: string,
  key: SigningKey,
  body: Omit<T, "header">,
  now: Date = new Date(),
): Promise<Signed> {
  const header = requestHeader(label, { $case: "domain", value: domain }, now);
  return signTbs(type, { ...body, header } as T, (l, bytes) => key.sign(l, bytes));
}

/** The decoded, not yet verified, tbs of a federation request and its sending domain. */
export interface UnverifiedRequest<T extends FederationTbs> {
  tbs: T;
  header: RequestHeader;
  /** The domain the header claims; its keys must verify the signature. */
  sender: string;
}

/**
 * Decodes the tbs only to learn which domain's keys to verify with. Nothing in it may be acted on
 * before {@link verifySignature} and {@link checkFreshness} passed.
 */
export function peekRequest<T extends FederationTbs>(
  type: MessageDecoder<T>,
  signed: Signed | undefined,
  label: string,
): UnverifiedRequest<T> {
  if (signed === undefined || signed.tbs.length === 0) {
    throw new MalformedFederationRequestError("signed request missing");
  }
  let tbs: T;
  try {
    tbs = type.decode(signed.tbs);
  } catch {
    throw new MalformedFederationRequestError("tbs does not decode");
  }
  const header = tbs.header;
  if (header === undefined) throw new MalformedFederationRequestError("request header missing");
  if (header.sender?.$case !== "domain") {
    throw new MalformedFederationRequestError("request header sender must be a domain");
  }
  if (!isValidDomain(header.sender.value))
    throw new MalformedFederationRequestError("sender domain is malformed");
  if (header.label !== label) throw new FederationAuthError(`signature label must be "${label}"`);
  if (header.requestId.length !== REQUEST_ID_LENGTH)
    throw new MalformedFederationRequestError(`request_id must be ${REQUEST_ID_LENGTH} bytes`);
  if (header.timestamp === undefined) throw new MalformedFederationRequestError("request timestamp missing");
  return { tbs, header, sender: header.sender.value };
}

/** True when one of `keys` verifies `signed` under `label`. */
export function verifySignature(keys: readonly VerifyingKey[], label: string, signed: Signed): boolean {
  if (signed.signature.length !== 64) return false;
  return keys.some((key) => key.verify(label, signed.tbs, signed.signature));
}

/**
 * The timestamp window check of a verified request (request ids are claimed afterwards in the
 * runtime's replay store, shared by all replicas). It runs after the policy and
 * signature checks (a denied peer gets PERMISSION_DENIED whatever its timestamp), so it uses
 * libs/crypto's window check directly rather than the runtime's `checkRequestHeader`, which
 * checks the window before the signature.
 */
export function checkFreshness(
  request: UnverifiedRequest<FederationTbs>,
  now: number,
  window: EnvelopeWindow = DEFAULT_ENVELOPE_WINDOW,
): void {
  const timestamp = request.header.timestamp?.getTime() ?? Number.NaN;
  try {
    if (!Number.isFinite(timestamp)) throw new Error("timestamp missing");
    checkTimestampWindow(timestamp, now, window, `request from ${request.sender}`);
  } catch (error) {
    throw new FederationAuthError(error instanceof Error ? error.message : "stale request", { cause: error });
  }
}
