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

/** A peer domain's gateway cannot be located (no static entry, DNS failure). */
export class PeerDiscoveryError extends Error {
  override readonly name = "PeerDiscoveryError";
}

/** A configuration value is malformed (static peer map, key seed). */
export class FederationConfigError extends Error {
  override readonly name = "FederationConfigError";
}
