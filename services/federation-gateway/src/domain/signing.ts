// The signing envelope of server-to-server requests: a phoenix.common.v1.Signed whose tbs starts
// with a RequestHeader (sender = the sending domain, label = the RPC's full name), signed with
// the sending domain's federation key under libs/crypto's labelled signature. The label is
// distinct per RPC, so a signature made for one federation RPC (or any client RPC) never
// verifies for another.
import { isValidDomain, type SigningKey } from "@phoenix/crypto";
import { type common, type MessageEncoder, requestHeader, signTbs } from "@phoenix/proto";
import { REQUEST_ID_LENGTH, type SignedRequestPolicy } from "@phoenix/runtime/signed-request";
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

/**
 * How the gateway words and orders the runtime authenticator's checks of an inbound request
 * (`authenticateSignedRequest`): the sender must be a well-formed domain before anything else of
 * the header is looked at, and the timestamp window is checked only after the signature verified,
 * so a peer the policy denies gets PERMISSION_DENIED whatever its timestamp.
 */
export const FEDERATION_REQUEST_CHECKS = {
  freshness: "after-signature",
  checkSender(header: RequestHeader): void {
    if (header.sender?.$case !== "domain") {
      throw new MalformedFederationRequestError("request header sender must be a domain");
    }
    if (!isValidDomain(header.sender.value))
      throw new MalformedFederationRequestError("sender domain is malformed");
  },
  describeRequest: (header: RequestHeader) => `request from ${senderDomain(header)}`,
  refusals: {
    missing: () => new MalformedFederationRequestError("signed request missing"),
    emptyTbs: () => new MalformedFederationRequestError("signed request missing"),
    // A signature of the wrong length is one that does not verify.
    signatureLength: null,
    undecodable: () => new MalformedFederationRequestError("tbs does not decode"),
    headerMissing: () => new MalformedFederationRequestError("request header missing"),
    wrongLabel: (_actual, expected) => new FederationAuthError(`signature label must be "${expected}"`),
    requestIdLength: () =>
      new MalformedFederationRequestError(`request_id must be ${REQUEST_ID_LENGTH} bytes`),
    timestampMissing: () => new MalformedFederationRequestError("request timestamp missing"),
    outsideWindow: (error) => new FederationAuthError(error.message, { cause: error }),
    invalidKey: (sender) => new FederationAuthError(`${sender} published an invalid federation key`),
    badSignature: (sender) =>
      new FederationAuthError(`signature by ${sender} does not verify with its federation keys`),
    replayed: (sender) => new FederationAuthError(`request id from ${sender} already used`),
  },
} satisfies Omit<SignedRequestPolicy<unknown>, "window" | "now" | "replay">;

/** The domain a checked header names as its sender. */
export function senderDomain(header: RequestHeader): string {
  return header.sender?.$case === "domain" ? header.sender.value : "";
}
