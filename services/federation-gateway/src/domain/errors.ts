// Errors of the gateway's domain logic. The mapping to gRPC status lives in one place:
// translateGatewayError (api/translate-error.ts).

/** The peer (or destination) is refused by this homeserver's federation policy. */
export class PeerRefusedError extends Error {
  override readonly name = "PeerRefusedError";
  constructor(
    readonly domain: string,
    reason: string,
  ) {
    super(`domain ${domain} is refused by the federation policy: ${reason}`);
  }
}

/** The peer sent more requests than its token bucket allows. */
export class PeerRateLimitedError extends Error {
  override readonly name = "PeerRateLimitedError";
  constructor(readonly domain: string) {
    super(`rate limit exceeded for domain ${domain}`);
  }
}

/** A federation request could not be authenticated (signature, key, timestamp, replay, label). */
export class FederationAuthError extends Error {
  override readonly name = "FederationAuthError";
}

/** A federation request is malformed or addressed to the wrong domain. */
export class MalformedFederationRequestError extends Error {
  override readonly name = "MalformedFederationRequestError";
}

/**
 * A peer reported a queue of another domain's recipient deleted. Only the QS holding a queue can
 * know it is gone, so a peer may report its own recipients only; anything else would let it make
 * a group drop a third domain's member.
 */
export class ForeignRecipientReportError extends Error {
  override readonly name = "ForeignRecipientReportError";
  constructor(
    readonly signer: string,
    readonly recipientDomain: string,
  ) {
    super(
      `queue-deleted report signed by ${signer} names a recipient of ${recipientDomain}; a peer may only report its own recipients`,
    );
  }
}

/**
 * Under mutual TLS, the client certificate does not name the domain whose key signed the request:
 * the connection is some other domain's (or a certificate holder's) speaking for the signer.
 */
export class PeerCertificateMismatchError extends Error {
  override readonly name = "PeerCertificateMismatchError";
}

/** A peer domain's gateway cannot be located (no static entry, DNS failure). */
export class PeerDiscoveryError extends Error {
  override readonly name = "PeerDiscoveryError";
}

/** A configuration value is malformed (static peer map, key seed). */
export class FederationConfigError extends Error {
  override readonly name = "FederationConfigError";
}
